"""Capacity planning: sweep a mapping's concurrency setting and recommend one.

:func:`plan` runs the simulator once per candidate setting (everything else in the
scenario unchanged) and judges each run. The setting is the mapping's
``maximum_concurrency`` for a queue or topic scenario, and its
``parallelization_factor`` (1-10 concurrent batches per shard) for a stream scenario,
whose mappings have no maximum concurrency (:data:`PARAMETERS`).

- **keeps up**: the backlog does not grow over the last quarter of the run.
  A queue's backlog is ``visible + in_flight + delayed`` at a bucket's end (the backlog
  at t=0 is the scenario's ``queue.backlog``); a stream's is its ``checkpoint_lag``, the
  records after the checkpoints of all shards (none at t=0). With ``n`` buckets, the reference point is
  the end of bucket ``floor(0.75 * n)`` (t=0 counting as point 0), which leaves the
  first three quarters of the run for warm-up (cold starts, the ``aws`` scaling ramp).
  The run keeps up when ``backlog(end) <= backlog(reference) + tolerance``, where
  ``tolerance = max(KEEP_UP_MIN_TOLERANCE, KEEP_UP_TOLERANCE * sent)`` and ``sent`` is
  the number of messages produced after the reference point: a deficit of under 5 % of
  the arrivals, or a handful of messages of jitter, does not count as growth. A queue
  that drains a backlog keeps up. Make the producers run through the last quarter of
  the run, or a lack of capacity earlier on goes unseen.
- **oldest_age_p99**: the 99th percentile (nearest rank) over all buckets of a queue's
  ``oldest_age``, or of a stream's iterator age (``iterator_age_ms``, in seconds here):
  how long the oldest waiting message or record had waited.
- **peak_concurrency**: the highest ``concurrency`` of any bucket: the most invocations
  running at once, which is what reaches a downstream called once per invocation.

The recommendation is the smallest setting that keeps up and whose peak concurrency is
at most the downstream limit (when one is given), or ``None`` with the reason.

A topic scenario has a mapping per subscriber: ``subscriber`` names the one whose
``maximum_concurrency`` is swept (``sluicegate plan --subscriber NAME``). Everything
else runs as written, the other mappings included, so the sweep sees the contention for
the account's concurrency that the setting causes or suffers; the judgement above reads
that mapping's own series (its queue's backlog, its concurrency, its errors and
throttles), and its backlog at t=0 is the topic's backlog plus its queue's.

A :class:`~sluicegate.sim.world.World` (an App whose mappings run together: queues,
FIFO queues, streams and topics in one account) is swept the same way: ``mapping``
names the mapping to sweep (``sluicegate plan APP --load LOAD --mapping NAME``, by the
mapping's name ``source->function`` or by its source when one mapping reads it), its
setting is the one its kind has, every other mapping runs as written, and the judgement
reads that mapping's own series.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluicegate.core.config import MappingConfig
from sluicegate.errors import InputError
from sluicegate.sim.driver import simulate
from sluicegate.sim.scenario import Scenario, load_scenario
from sluicegate.sim.stream_scenario import StreamScenario, load_stream_scenario
from sluicegate.sim.streams import simulate_stream
from sluicegate.sim.topic_scenario import SubscriberSpec, TopicScenario, load_topic_scenario
from sluicegate.sim.world import SimMapping, World

__all__ = [
    "DEFAULT_FACTORS",
    "DEFAULT_VALUES",
    "KEEP_UP_MIN_TOLERANCE",
    "KEEP_UP_TOLERANCE",
    "PARAMETERS",
    "Plan",
    "Setting",
    "default_values",
    "keeps_up",
    "plan",
    "swept_downstream_limit",
    "swept_mapping",
    "swept_scenario",
]

DEFAULT_VALUES: tuple[int, ...] = (2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""The candidate ``maximum_concurrency`` values swept by default (AWS allows 2-1,000)."""

DEFAULT_FACTORS: tuple[int, ...] = tuple(range(1, 11))
"""The candidate ``parallelization_factor`` values swept by default: all AWS allows."""

PARAMETERS: dict[str, str] = {"queue": "maximum_concurrency",
                              "stream": "parallelization_factor"}
"""The mapping setting swept, by kind of scenario (a topic's subscribers are queues)."""

KEEP_UP_TOLERANCE = 0.05
"""Backlog growth over the last quarter allowed, as a fraction of the messages sent then."""

KEEP_UP_MIN_TOLERANCE = 10
"""Backlog growth over the last quarter always allowed (jitter), in messages."""

_MIN_SETTING = 2
_MAX_SETTING = 1000


@dataclass(frozen=True, slots=True)
class Setting:
    """One simulated setting and how the run went.

    Attributes:
        parameter: the mapping setting swept (a value of :data:`PARAMETERS`).
        value: its value in this run.
        keeps_up: whether the backlog did not grow over the last quarter (module docs).
        oldest_age_p99: p99 over buckets of the oldest message's age (a stream's
            iterator age), seconds.
        peak_concurrency: most invocations running at once.
        throughput: messages (records) processed per simulated second.
        backlog_start: backlog at the reference point (three quarters into the run).
        backlog_end: backlog at the end of the run.
        errors: invocations that ended in error.
        throttles: invocations refused by the concurrency pool.
        within_limit: ``peak_concurrency <= downstream_limit`` (``True`` without a limit).
    """

    parameter: str
    value: int
    keeps_up: bool
    oldest_age_p99: float
    peak_concurrency: int
    throughput: float
    backlog_start: int
    backlog_end: int
    errors: int
    throttles: int
    within_limit: bool

    def to_dict(self) -> dict[str, Any]:
        """The plain form written to JSON (floats rounded to 6 significant digits); the
        value is keyed by the parameter's name."""
        return {
            self.parameter: self.value,
            "keeps_up": self.keeps_up,
            "oldest_age_p99": _round(self.oldest_age_p99),
            "peak_concurrency": self.peak_concurrency,
            "throughput": _round(self.throughput),
            "backlog_start": self.backlog_start,
            "backlog_end": self.backlog_end,
            "errors": self.errors,
            "throttles": self.throttles,
            "within_limit": self.within_limit,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The result of a sweep.

    Attributes:
        scenario: the base scenario's plain form (before the sweep's override).
        parameter: the mapping setting swept (a value of :data:`PARAMETERS`).
        downstream_limit: the peak concurrency allowed, or ``None``.
        settings: one :class:`Setting` per value, in ascending order.
        recommendation: the smallest setting that fits, or ``None``.
        reason: one sentence explaining the recommendation or its absence.
        subscriber: the topic subscriber whose mapping was swept (``None`` for a queue
            scenario).
        mapping: the mapping of a world that was swept (``None`` for a scenario).
    """

    scenario: dict[str, Any]
    parameter: str
    downstream_limit: int | None
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    recommendation: int | None = None
    reason: str = ""
    subscriber: str | None = None
    mapping: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"scenario", "parameter", "downstream_limit", "settings", "recommendation",
        "reason"}`` (and ``"subscriber"`` for a topic scenario, ``"mapping"`` for a
        world), JSON-ready and
        deterministic for a given scenario and seed."""
        out = {
            "scenario": self.scenario,
            "parameter": self.parameter,
            "downstream_limit": self.downstream_limit,
            "settings": [s.to_dict() for s in self.settings],
            "recommendation": self.recommendation,
            "reason": self.reason,
        }
        if self.subscriber is not None:
            out["subscriber"] = self.subscriber
        if self.mapping is not None:
            out["mapping"] = self.mapping
        return out


def _round(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}") if value else 0.0


def default_values(scenario: Scenario | StreamScenario) -> list[int]:
    """The candidate settings for ``scenario``.

    Parameters:
        scenario: the swept scenario (for a topic subscriber, its
            :meth:`~sluicegate.sim.topic_scenario.TopicScenario.subscriber_scenario`:
            see :func:`swept_scenario`).

    Returns:
        For a stream scenario, :data:`DEFAULT_FACTORS`. For a queue scenario,
        :data:`DEFAULT_VALUES` up to the function's reserved concurrency (or the
        account's concurrency limit when none is reserved), plus that bound itself and
        the scenario's own ``maximum_concurrency``, each kept within 2-1,000; ascending,
        without duplicates.
    """
    if isinstance(scenario, StreamScenario):
        return list(DEFAULT_FACTORS)
    return _queue_values(scenario.function.reserved_concurrency,
                         scenario.account.concurrency_limit, scenario.mapping.maximum_concurrency)


def _queue_values(reserved: int | None, account_limit: int, own: int | None) -> list[int]:
    """:data:`DEFAULT_VALUES` up to the reservation (else the account's limit), that
    bound and the mapping's own setting, within 2-1,000, ascending."""
    bound = reserved if reserved is not None else account_limit
    bound = min(max(bound, _MIN_SETTING), _MAX_SETTING)
    values = {v for v in DEFAULT_VALUES if v <= bound}
    values.add(bound)
    if own is not None:
        values.add(own)
    return sorted(values)


def _backlog(bucket: Mapping[str, Any]) -> int:
    if "checkpoint_lag" in bucket:  # a stream's bucket
        return int(bucket["checkpoint_lag"])
    return int(bucket.get("visible", 0)) + int(bucket.get("in_flight", 0)) + int(
        bucket.get("delayed", 0))


def keeps_up(series: Sequence[Mapping[str, Any]], initial_backlog: int = 0
             ) -> tuple[bool, int, int]:
    """Whether the backlog did not grow over the last quarter of a run.

    Parameters:
        series: the run's buckets (``visible``, ``in_flight``, ``delayed``, or a
            stream's ``checkpoint_lag``; ``sent``).
        initial_backlog: the backlog at t=0, before the first bucket.

    Returns:
        ``(keeps_up, backlog at the reference point, backlog at the end)``; see the
        module's documentation for the definition.
    """
    if not series:
        return True, initial_backlog, initial_backlog
    points = [initial_backlog] + [_backlog(b) for b in series]
    reference = math.floor(0.75 * len(series))
    sent = sum(int(b.get("sent", 0)) for b in series[reference:])
    tolerance = max(KEEP_UP_MIN_TOLERANCE, KEEP_UP_TOLERANCE * sent)
    start, end = points[reference], points[-1]
    return end <= start + tolerance, start, end


def _p99(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _age(bucket: Mapping[str, Any]) -> float:
    """Seconds the oldest waiting message (or record) had waited at a bucket."""
    if "iterator_age_ms" in bucket:  # a stream's bucket; None without invocations
        return float(bucket["iterator_age_ms"] or 0.0) / 1000.0
    return float(bucket.get("oldest_age", 0.0))


def _evaluate(scenario: Scenario | StreamScenario | TopicScenario, value: int,
              limit: int | None, subscriber: SubscriberSpec | None) -> Setting:
    series: list[dict[str, Any]]
    backlog = 0
    if isinstance(scenario, StreamScenario):
        parameter = PARAMETERS["stream"]
        run = simulate_stream(load_stream_scenario(
            scenario, overrides=[f"mapping.{parameter}={value}"]))
        series, summary = run.series, run.summary
    elif isinstance(scenario, Scenario):
        parameter = PARAMETERS["queue"]
        run = simulate(load_scenario(scenario, overrides=[f"mapping.{parameter}={value}"]))
        series, summary = run.series, run.summary
        backlog = scenario.queue.backlog
    else:
        assert subscriber is not None
        parameter = PARAMETERS["queue"]
        run = simulate(load_topic_scenario(scenario, overrides=[
            f"subscribers.{subscriber.name}.mapping.{parameter}={value}"]))
        mapping = next(m for m in run.mappings or () if m["name"] == subscriber.name)
        series, summary = mapping["series"], mapping["summary"]
        backlog = scenario.topic.backlog + subscriber.queue.backlog
    return _judge(parameter, value, series, summary, backlog, limit)


def _judge(parameter: str, value: int, series: Sequence[Mapping[str, Any]],
           summary: Mapping[str, Any], backlog: int, limit: int | None) -> Setting:
    """How one run of the swept mapping went, from its own series and summary."""
    ok, start, end = keeps_up(series, backlog)
    peak = max((int(b.get("concurrency", 0)) for b in series), default=0)
    return Setting(
        parameter=parameter,
        value=value,
        keeps_up=ok,
        oldest_age_p99=_p99(_age(b) for b in series),
        peak_concurrency=peak,
        throughput=float(summary.get("throughput", 0.0)),
        backlog_start=start,
        backlog_end=end,
        errors=int(summary.get("total_errors", 0)),
        throttles=int(summary.get("total_throttles", 0)),
        within_limit=limit is None or peak <= limit,
    )


def _recommend(settings: Sequence[Setting], limit: int | None) -> tuple[int | None, str]:
    for s in settings:
        if s.keeps_up and s.within_limit:
            bound = "" if limit is None else f" <= the downstream limit of {limit}"
            return s.value, (
                f"the smallest setting tried that keeps up (backlog {s.backlog_start} -> "
                f"{s.backlog_end} over the last quarter) with peak concurrency "
                f"{s.peak_concurrency}{bound}")
    keeping = [s for s in settings if s.keeps_up]
    if not keeping:
        top = settings[-1]
        return None, (
            f"no setting tried keeps up: even {top.parameter}={top.value} lets the backlog "
            f"grow from {top.backlog_start} to {top.backlog_end} over the last quarter of "
            f"the run")
    first = keeping[0]
    within = [s for s in settings if s.within_limit]
    if not within:
        why = "every setting tried exceeds it"
    else:
        most = max(s.value for s in within)
        why = f"the settings within it (up to {first.parameter}={most}) let the backlog grow"
    return None, (
        f"no setting both keeps up and stays within the downstream limit of {limit}: "
        f"the smallest that keeps up, {first.parameter}={first.value}, reaches a peak "
        f"concurrency of {first.peak_concurrency}, and {why}")


def plan(
    scenario: Scenario | StreamScenario | TopicScenario | World,
    *,
    downstream_limit: int | None = None,
    values: Iterable[int] | None = None,
    subscriber: str | None = None,
    mapping: str | None = None,
) -> Plan:
    """Simulate ``scenario`` once per value of its mapping's setting and recommend one.

    Parameters:
        scenario: the base scenario; only the swept setting is varied: a queue's
            ``mapping.maximum_concurrency`` (a topic scenario's: ``subscriber``'s), a
            stream's ``mapping.parallelization_factor``.
        downstream_limit: the most invocations the downstream may see at once; ``None``
            for no limit.
        values: the settings to try (``maximum_concurrency`` 2-1,000,
            ``parallelization_factor`` 1-10); by default :func:`default_values`.
        subscriber: for a topic scenario (required there, refused otherwise): the name
            of the subscriber whose mapping is swept.
        mapping: for a world (required when it has several mappings, refused for a
            scenario): the mapping to sweep, by name (``source->function``) or by the
            source it reads.

    Returns:
        The :class:`Plan`, settings in ascending order.

    Raises:
        ScenarioError: a value out of range (named as ``mapping.maximum_concurrency``,
            ``subscribers[i].mapping.maximum_concurrency`` or
            ``mapping.parallelization_factor``).
        InputError: ``values`` is empty or ``downstream_limit`` is below 1; a topic
            scenario without ``subscriber``, an unknown subscriber, or a subscriber named
            for a queue or stream scenario; the same for ``mapping`` and a world.
    """
    if downstream_limit is not None and downstream_limit < 1:
        raise InputError(f"the downstream limit must be at least 1, got {downstream_limit}")
    if isinstance(scenario, World):
        if subscriber is not None:
            raise InputError(f"subscriber {subscriber!r}: only a topic scenario has "
                             "subscribers; name the App's mapping to sweep with --mapping")
        return _plan_world(scenario, downstream_limit, values, mapping)
    if mapping is not None:
        raise InputError(f"mapping {mapping!r}: this scenario has one mapping to sweep"
                         + (" per subscriber: name it with --subscriber"
                            if isinstance(scenario, TopicScenario) else ", and it is swept"))
    swept = _subscriber(scenario, subscriber)
    parameter = PARAMETERS["stream" if isinstance(scenario, StreamScenario) else "queue"]
    chosen = (sorted(set(values)) if values is not None
              else default_values(swept_scenario(scenario, subscriber)))
    if not chosen:
        raise InputError(f"no {parameter} values to try")
    settings = tuple(_evaluate(scenario, v, downstream_limit, swept) for v in chosen)
    recommendation, reason = _recommend(settings, downstream_limit)
    return Plan(scenario.to_dict(), parameter, downstream_limit, settings, recommendation,
                reason, subscriber)


def swept_scenario(scenario: Scenario | StreamScenario | TopicScenario,
                   subscriber: str | None = None) -> Scenario | StreamScenario:
    """The scenario whose mapping :func:`plan` sweeps: ``scenario`` itself, or a topic's
    ``subscriber`` as a queue scenario of its own (its function's reserved concurrency
    and downstream, its mapping's own setting).

    Raises:
        InputError: as :func:`plan`, for the subscriber.
    """
    swept = _subscriber(scenario, subscriber)
    if swept is None:
        assert not isinstance(scenario, TopicScenario)
        return scenario
    assert isinstance(scenario, TopicScenario)
    return scenario.subscriber_scenario(scenario.subscribers.index(swept))


def _subscriber(scenario: Scenario | StreamScenario | TopicScenario, name: str | None
                ) -> SubscriberSpec | None:
    """The topic subscriber ``name`` names, or ``None`` for a queue or stream scenario.

    Raises:
        InputError: a topic scenario without a name or with an unknown one, or a name
            for a queue or stream scenario.
    """
    if not isinstance(scenario, TopicScenario):
        if name is not None:
            raise InputError(f"subscriber {name!r}: only a topic scenario has subscribers; "
                             "this one has one mapping, which is swept")
        return None
    names = [s.name for s in scenario.subscribers]
    if name is None:
        raise InputError("a topic scenario has a mapping per subscriber: name the one to "
                         f"sweep with --subscriber (one of {', '.join(names)})")
    for subscriber in scenario.subscribers:
        if subscriber.name == name:
            return subscriber
    raise InputError(f"no subscriber {name!r} in the topic scenario (known: "
                     f"{', '.join(names)})")


# ---------------------------------------------------------------------- worlds
def swept_mapping(world: World, name: str | None) -> SimMapping:
    """The mapping of ``world`` that ``name`` names: by its name (``source->function``),
    else by the source it reads when one mapping reads it; the only one when ``name`` is
    ``None``.

    Raises:
        InputError: no name for a world with several mappings, or one that names none.
    """
    names = ", ".join(m.config.name for m in world.mappings)
    if name is None:
        if len(world.mappings) == 1:
            return world.mappings[0]
        raise InputError("this App's mappings run together: name the one to sweep with "
                         f"--mapping (one of {names})")
    for m in world.mappings:
        if m.config.name == name:
            return m
    reading = [m for m in world.mappings if _source(m) == name]
    if len(reading) == 1:
        return reading[0]
    if reading:
        raise InputError(f"{name!r} is read by {len(reading)} mappings: name one of "
                         f"{', '.join(m.config.name for m in reading)}")
    raise InputError(f"no mapping {name!r} in the App (known: {names})")


def _source(mapping: SimMapping) -> str:
    config = mapping.config
    return config.queue if isinstance(config, MappingConfig) else config.stream


def swept_downstream_limit(world: World, name: str | None) -> int | None:
    """The concurrency of the downstream the swept mapping's function calls, if any."""
    downstream = world.function(swept_mapping(world, name).config.function).downstream
    return None if downstream is None else downstream.concurrency


def _plan_world(world: World, limit: int | None, values: Iterable[int] | None,
                name: str | None) -> Plan:
    swept = swept_mapping(world, name)
    config = swept.config
    queue = isinstance(config, MappingConfig)
    parameter = PARAMETERS["queue" if queue else "stream"]
    if values is not None:
        chosen = sorted(set(values))
    elif isinstance(config, MappingConfig):
        reserved = world.function(config.function).config.reserved_concurrency
        chosen = _queue_values(reserved, world.account.concurrency_limit,
                               config.maximum_concurrency)
    else:
        chosen = list(DEFAULT_FACTORS)
    if not chosen:
        raise InputError(f"no {parameter} values to try")
    backlog = 0
    if isinstance(config, MappingConfig):
        backlog = world.queue(config.queue).backlog + sum(
            t.backlog for t in world.topics if config.queue in t.config.subscribers)
    settings = []
    for value in chosen:
        try:
            changed = dataclasses.replace(config, **{parameter: value})  # type: ignore[arg-type]
        except ValueError as exc:  # ConfigError: a value out of the setting's range
            raise InputError(f"mapping {config.name}: {exc}") from None
        run = simulate(dataclasses.replace(world, mappings=tuple(
            dataclasses.replace(m, config=changed) if m is swept else m
            for m in world.mappings)))
        lane = next(m for m in run.mappings or () if m["name"] == swept.name)
        settings.append(_judge(parameter, value, lane["series"], lane["summary"], backlog,
                               limit))
    recommendation, reason = _recommend(settings, limit)
    return Plan(world.scenario, parameter, limit, tuple(settings), recommendation, reason,
                mapping=config.name)
