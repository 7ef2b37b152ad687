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

A function's internal queue of asynchronous invocations (``--mapping async:FUNCTION``)
has no mapping setting: what bounds it is the function's ``reserved_concurrency``, which
is swept instead (:data:`DEFAULT_RESERVATIONS` up to what the account lets the function
reserve, and its own). Its backlog is the internal queue's, its age the oldest event's,
and a setting under which events are dropped for their age (``EventAgeExceeded``) does
not fit: the age stays bounded only because events are lost.

**max_age** (``--max-age``): a target for the age: a setting fits only if its
``oldest_age_p99`` is at most ``max_age`` seconds: "what reserved concurrency keeps the
event age under X", or what ``maximum_concurrency`` keeps the oldest message's age
under X.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluicegate.core.config import MappingConfig
from sluicegate.errors import ConfigError, InputError
from sluicegate.sim.driver import simulate
from sluicegate.sim.scenario import Scenario, load_scenario
from sluicegate.sim.stream_scenario import StreamScenario, load_stream_scenario
from sluicegate.sim.streams import simulate_stream
from sluicegate.sim.topic_scenario import SubscriberSpec, TopicScenario, load_topic_scenario
from sluicegate.sim.world import SimMapping, World

__all__ = [
    "DEFAULT_FACTORS",
    "DEFAULT_RESERVATIONS",
    "DEFAULT_VALUES",
    "KEEP_UP_MIN_TOLERANCE",
    "KEEP_UP_TOLERANCE",
    "PARAMETERS",
    "Plan",
    "Setting",
    "default_values",
    "keeps_up",
    "plan",
    "reservation_values",
    "swept_downstream_limit",
    "swept_mapping",
    "swept_scenario",
]

DEFAULT_VALUES: tuple[int, ...] = (2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""The candidate ``maximum_concurrency`` values swept by default (AWS allows 2-1,000)."""

DEFAULT_FACTORS: tuple[int, ...] = tuple(range(1, 11))
"""The candidate ``parallelization_factor`` values swept by default: all AWS allows."""

DEFAULT_RESERVATIONS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""The candidate ``reserved_concurrency`` values swept by default for a function's
internal queue (up to what the account lets it reserve)."""

PARAMETERS: dict[str, str] = {"queue": "maximum_concurrency",
                              "stream": "parallelization_factor",
                              "async": "reserved_concurrency"}
"""The setting swept, by kind of scenario or mapping (a topic's subscribers are queues;
a function's internal queue of asynchronous invocations is swept by its function's
reserved concurrency)."""

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
        dropped: a function's internal queue: events dropped for their age
            (``EventAgeExceeded``); 0 for a mapping.
        max_age: the age target, seconds (``None``: none).
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
    dropped: int = 0
    max_age: float | None = None

    @property
    def within_age(self) -> bool:
        """``oldest_age_p99 <= max_age`` (``True`` without a target)."""
        return self.max_age is None or self.oldest_age_p99 <= self.max_age

    @property
    def fits(self) -> bool:
        """Keeps up, within the downstream limit and the age target, nothing dropped."""
        return self.keeps_up and self.within_limit and self.within_age and not self.dropped

    def to_dict(self) -> dict[str, Any]:
        """The plain form written to JSON (floats rounded to 6 significant digits); the
        value is keyed by the parameter's name; ``dropped`` for a function's internal
        queue and ``within_age`` with an age target."""
        out: dict[str, Any] = {
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
        if self.parameter == PARAMETERS["async"]:
            out["dropped"] = self.dropped
        if self.max_age is not None:
            out["within_age"] = self.within_age
        return out


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
        max_age: the age target, seconds (``None``: none).
    """

    scenario: dict[str, Any]
    parameter: str
    downstream_limit: int | None
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    recommendation: int | None = None
    reason: str = ""
    subscriber: str | None = None
    mapping: str | None = None
    max_age: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"scenario", "parameter", "downstream_limit", "settings", "recommendation",
        "reason"}`` (and ``"subscriber"`` for a topic scenario, ``"mapping"`` for a
        world, ``"max_age"`` with an age target), JSON-ready and deterministic for a
        given scenario and seed."""
        out: dict[str, Any] = {
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
        if self.max_age is not None:
            out["max_age"] = self.max_age
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
              limit: int | None, subscriber: SubscriberSpec | None,
              max_age: float | None = None) -> Setting:
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
    return _judge(parameter, value, series, summary, backlog, limit, max_age)


def _judge(parameter: str, value: int, series: Sequence[Mapping[str, Any]],
           summary: Mapping[str, Any], backlog: int, limit: int | None,
           max_age: float | None = None) -> Setting:
    """How one run of the swept mapping went, from its own series and summary (a
    function's internal queue's: its events dropped for their age too)."""
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
        dropped=int(summary.get("events_dropped_event_age_exceeded", 0)),
        max_age=max_age,
    )


def _recommend(settings: Sequence[Setting], limit: int | None,
               max_age: float | None = None) -> tuple[int | None, str]:
    if max_age is not None or any(s.dropped for s in settings):
        return _recommend_within(settings, limit, max_age)
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


def _recommend_within(settings: Sequence[Setting], limit: int | None,
                      max_age: float | None) -> tuple[int | None, str]:
    """:func:`_recommend` with an age target, or when events were dropped: the smallest
    setting that fits (:attr:`Setting.fits`), or why none does."""
    age = "" if max_age is None else f" <= the target of {max_age:g} s"
    bound = "" if limit is None else f" <= the downstream limit of {limit}"
    for s in settings:
        if s.fits:
            return s.value, (
                f"the smallest setting tried that keeps up (backlog {s.backlog_start} -> "
                f"{s.backlog_end} over the last quarter), drops no event for its age, keeps "
                f"the oldest age at {s.oldest_age_p99:g} s (p99){age} with peak "
                f"concurrency {s.peak_concurrency}{bound}")
    top = settings[-1]
    why = []
    if not top.keeps_up:
        why.append(f"lets the backlog grow from {top.backlog_start} to {top.backlog_end}")
    if top.dropped:
        why.append(f"drops {top.dropped} events for their age")
    if not top.within_age:
        why.append(f"reaches an oldest age of {top.oldest_age_p99:g} s (p99), above the "
                   f"target of {max_age:g} s")
    if not top.within_limit:
        why.append(f"reaches a peak concurrency of {top.peak_concurrency} above the "
                   f"downstream limit of {limit}")
    return None, (f"no setting tried fits: even {top.parameter}={top.value} "
                  + ", and ".join(why))


def plan(
    scenario: Scenario | StreamScenario | TopicScenario | World,
    *,
    downstream_limit: int | None = None,
    values: Iterable[int] | None = None,
    subscriber: str | None = None,
    mapping: str | None = None,
    max_age: float | None = None,
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
            source it reads; ``async:FUNCTION`` names a function's internal queue of
            asynchronous invocations, swept by the function's ``reserved_concurrency``.
        max_age: a target for the oldest message's (event's) age, seconds: a setting
            fits only if its ``oldest_age_p99`` is at most this; ``None``: no target.

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
    if max_age is not None and not max_age > 0:
        raise InputError(f"the age target must be above 0 seconds, got {max_age}")
    if isinstance(scenario, World):
        if subscriber is not None:
            raise InputError(f"subscriber {subscriber!r}: only a topic scenario has "
                             "subscribers; name the App's mapping to sweep with --mapping")
        return _plan_world(scenario, downstream_limit, values, mapping, max_age)
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
    settings = tuple(_evaluate(scenario, v, downstream_limit, swept, max_age)
                     for v in chosen)
    recommendation, reason = _recommend(settings, downstream_limit, max_age)
    return Plan(scenario.to_dict(), parameter, downstream_limit, settings, recommendation,
                reason, subscriber, max_age=max_age)


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
                name: str | None, max_age: float | None = None) -> Plan:
    swept = swept_mapping(world, name)
    if swept.events is not None:
        return _plan_reservation(world, swept, limit, values, max_age)
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
                               limit, max_age))
    recommendation, reason = _recommend(settings, limit, max_age)
    return Plan(world.scenario, parameter, limit, tuple(settings), recommendation, reason,
                mapping=config.name, max_age=max_age)


def reservation_values(world: World, function: str) -> list[int]:
    """The candidate reserved concurrencies of ``function``: :data:`DEFAULT_RESERVATIONS`
    up to what the account lets it reserve (its concurrency less ``min_unreserved`` and
    the other functions' reservations), that bound, and its own reservation."""
    account = world.account
    others = sum(f.config.reserved_concurrency or 0 for f in world.functions
                 if f.config.name != function)
    bound = max(1, account.concurrency_limit - account.min_unreserved - others)
    values = {v for v in DEFAULT_RESERVATIONS if v <= bound}
    values.add(bound)
    own = world.function(function).config.reserved_concurrency
    if own is not None:
        values.add(own)
    return sorted(values)


def _plan_reservation(world: World, swept: SimMapping, limit: int | None,
                      values: Iterable[int] | None, max_age: float | None) -> Plan:
    """Sweep the reserved concurrency of the function whose internal queue ``swept``
    is; every other element runs as written."""
    parameter = PARAMETERS["async"]
    function = swept.config.function
    chosen = sorted(set(values)) if values is not None else reservation_values(world, function)
    if not chosen:
        raise InputError(f"no {parameter} values to try")
    settings = []
    for value in chosen:
        functions = []
        for f in world.functions:
            if f.config.name == function:
                try:
                    f = dataclasses.replace(f, config=dataclasses.replace(
                        f.config, reserved_concurrency=value))
                except ValueError as exc:  # ConfigError: out of the setting's range
                    raise InputError(f"function {function!r}: {exc}") from None
            functions.append(f)
        try:
            run = simulate(dataclasses.replace(world, functions=tuple(functions)))
        except ConfigError as exc:  # more than the account lets it reserve
            raise InputError(f"function {function!r}: reserved_concurrency={value}: "
                             f"{exc}") from None
        lane = next(m for m in run.mappings or () if m["name"] == swept.name)
        settings.append(_judge(parameter, value, lane["series"], lane["summary"], 0,
                               limit, max_age))
    recommendation, reason = _recommend(settings, limit, max_age)
    return Plan(world.scenario, parameter, limit, tuple(settings), recommendation, reason,
                mapping=swept.name, max_age=max_age)
