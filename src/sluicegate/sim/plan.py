"""Capacity planning: sweep ``mapping.maximum_concurrency`` and recommend a setting.

:func:`plan` runs the simulator once per candidate ``maximum_concurrency`` (everything
else in the scenario unchanged) and judges each run:

- **keeps up**: the queue's backlog does not grow over the last quarter of the run.
  The backlog is ``visible + in_flight + delayed`` at a bucket's end (the backlog at
  t=0 is the scenario's ``queue.backlog``). With ``n`` buckets, the reference point is
  the end of bucket ``floor(0.75 * n)`` (t=0 counting as point 0), which leaves the
  first three quarters of the run for warm-up (cold starts, the ``aws`` scaling ramp).
  The run keeps up when ``backlog(end) <= backlog(reference) + tolerance``, where
  ``tolerance = max(KEEP_UP_MIN_TOLERANCE, KEEP_UP_TOLERANCE * sent)`` and ``sent`` is
  the number of messages produced after the reference point: a deficit of under 5 % of
  the arrivals, or a handful of messages of jitter, does not count as growth. A queue
  that drains a backlog keeps up. Make the producers run through the last quarter of
  the run, or a lack of capacity earlier on goes unseen.
- **oldest_age_p99**: the 99th percentile (nearest rank) of ``oldest_age`` over all
  buckets.
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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluicegate.errors import InputError
from sluicegate.sim.driver import simulate
from sluicegate.sim.scenario import Scenario, load_scenario
from sluicegate.sim.topic_scenario import SubscriberSpec, TopicScenario, load_topic_scenario

__all__ = [
    "DEFAULT_VALUES",
    "KEEP_UP_MIN_TOLERANCE",
    "KEEP_UP_TOLERANCE",
    "Plan",
    "Setting",
    "default_values",
    "keeps_up",
    "plan",
]

DEFAULT_VALUES: tuple[int, ...] = (2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""The candidate ``maximum_concurrency`` values swept by default (AWS allows 2-1,000)."""

KEEP_UP_TOLERANCE = 0.05
"""Backlog growth over the last quarter allowed, as a fraction of the messages sent then."""

KEEP_UP_MIN_TOLERANCE = 10
"""Backlog growth over the last quarter always allowed (jitter), in messages."""

_MIN_SETTING = 2
_MAX_SETTING = 1000


@dataclass(frozen=True, slots=True)
class Setting:
    """One simulated ``maximum_concurrency`` and how the run went.

    Attributes:
        maximum_concurrency: the setting simulated.
        keeps_up: whether the backlog did not grow over the last quarter (module docs).
        oldest_age_p99: p99 over buckets of the oldest message's age, seconds.
        peak_concurrency: most invocations running at once.
        throughput: messages processed per simulated second.
        backlog_start: backlog at the reference point (three quarters into the run).
        backlog_end: backlog at the end of the run.
        errors: invocations that ended in error.
        throttles: invocations refused by the concurrency pool.
        within_limit: ``peak_concurrency <= downstream_limit`` (``True`` without a limit).
    """

    maximum_concurrency: int
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
        """The plain form written to JSON (floats rounded to 6 significant digits)."""
        return {
            "maximum_concurrency": self.maximum_concurrency,
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
        downstream_limit: the peak concurrency allowed, or ``None``.
        settings: one :class:`Setting` per value, in ascending order.
        recommendation: the smallest setting that fits, or ``None``.
        reason: one sentence explaining the recommendation or its absence.
        subscriber: the topic subscriber whose mapping was swept (``None`` for a queue
            scenario).
    """

    scenario: dict[str, Any]
    downstream_limit: int | None
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    recommendation: int | None = None
    reason: str = ""
    subscriber: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"scenario", "downstream_limit", "settings", "recommendation", "reason"}``
        (and ``"subscriber"`` for a topic scenario), JSON-ready and deterministic for a
        given scenario and seed."""
        out = {
            "scenario": self.scenario,
            "downstream_limit": self.downstream_limit,
            "settings": [s.to_dict() for s in self.settings],
            "recommendation": self.recommendation,
            "reason": self.reason,
        }
        if self.subscriber is not None:
            out["subscriber"] = self.subscriber
        return out


def _round(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}") if value else 0.0


def default_values(scenario: Scenario) -> list[int]:
    """The candidate settings for ``scenario``.

    Parameters:
        scenario: the base scenario (for a topic subscriber, its
            :meth:`~sluicegate.sim.topic_scenario.TopicScenario.subscriber_scenario`).

    Returns:
        :data:`DEFAULT_VALUES` up to the function's reserved concurrency (or the
        account's concurrency limit when none is reserved), plus that bound itself and
        the scenario's own ``maximum_concurrency``, each kept within 2-1,000; ascending,
        without duplicates.
    """
    reserved = scenario.function.reserved_concurrency
    bound = reserved if reserved is not None else scenario.account.concurrency_limit
    bound = min(max(bound, _MIN_SETTING), _MAX_SETTING)
    values = {v for v in DEFAULT_VALUES if v <= bound}
    values.add(bound)
    own = scenario.mapping.maximum_concurrency
    if own is not None:
        values.add(own)
    return sorted(values)


def _backlog(bucket: Mapping[str, Any]) -> int:
    return int(bucket.get("visible", 0)) + int(bucket.get("in_flight", 0)) + int(
        bucket.get("delayed", 0))


def keeps_up(series: Sequence[Mapping[str, Any]], initial_backlog: int = 0
             ) -> tuple[bool, int, int]:
    """Whether the backlog did not grow over the last quarter of a run.

    Parameters:
        series: the run's buckets (``visible``, ``in_flight``, ``delayed``, ``sent``).
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


def _evaluate(scenario: Scenario | TopicScenario, value: int, limit: int | None,
              subscriber: SubscriberSpec | None) -> Setting:
    series: list[dict[str, Any]]
    if subscriber is None:
        assert isinstance(scenario, Scenario)
        run = simulate(load_scenario(
            scenario, overrides=[f"mapping.maximum_concurrency={value}"]))
        series, summary = run.series, run.summary
        backlog = scenario.queue.backlog
    else:
        assert isinstance(scenario, TopicScenario)
        run = simulate(load_topic_scenario(scenario, overrides=[
            f"subscribers.{subscriber.name}.mapping.maximum_concurrency={value}"]))
        mapping = next(m for m in run.mappings or () if m["name"] == subscriber.name)
        series, summary = mapping["series"], mapping["summary"]
        backlog = scenario.topic.backlog + subscriber.queue.backlog
    ok, start, end = keeps_up(series, backlog)
    peak = max((int(b.get("concurrency", 0)) for b in series), default=0)
    return Setting(
        maximum_concurrency=value,
        keeps_up=ok,
        oldest_age_p99=_p99(float(b.get("oldest_age", 0.0)) for b in series),
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
            return s.maximum_concurrency, (
                f"the smallest setting tried that keeps up (backlog {s.backlog_start} -> {s.backlog_end} over the last "
                f"quarter) with peak concurrency {s.peak_concurrency}{bound}")
    keeping = [s for s in settings if s.keeps_up]
    if not keeping:
        top = settings[-1]
        return None, (
            f"no setting tried keeps up: even maximum_concurrency={top.maximum_concurrency} "
            f"lets the backlog grow from {top.backlog_start} to {top.backlog_end} over the "
            f"last quarter of the run")
    first = keeping[0]
    within = [s for s in settings if s.within_limit]
    if not within:
        why = "every setting tried exceeds it"
    else:
        most = max(s.maximum_concurrency for s in within)
        why = (f"the settings within it (up to maximum_concurrency={most}) let the "
               f"backlog grow")
    return None, (
        f"no setting both keeps up and stays within the downstream limit of {limit}: "
        f"the smallest that keeps up, maximum_concurrency={first.maximum_concurrency}, "
        f"reaches a peak concurrency of {first.peak_concurrency}, and {why}")


def plan(
    scenario: Scenario | TopicScenario,
    *,
    downstream_limit: int | None = None,
    values: Iterable[int] | None = None,
    subscriber: str | None = None,
) -> Plan:
    """Simulate ``scenario`` once per ``maximum_concurrency`` value and recommend one.

    Parameters:
        scenario: the base scenario; only ``mapping.maximum_concurrency`` is varied (a
            topic scenario's: ``subscriber``'s).
        downstream_limit: the most invocations the downstream may see at once; ``None``
            for no limit.
        values: the settings to try (each 2-1,000); by default :func:`default_values`.
        subscriber: for a topic scenario (required there, refused otherwise): the name
            of the subscriber whose mapping is swept.

    Returns:
        The :class:`Plan`, settings in ascending order.

    Raises:
        ScenarioError: a value outside 2-1,000 (named as ``mapping.maximum_concurrency``,
            or ``subscribers[i].mapping.maximum_concurrency``).
        InputError: ``values`` is empty or ``downstream_limit`` is below 1; a topic
            scenario without ``subscriber``, an unknown subscriber, or a subscriber named
            for a queue scenario.
    """
    if downstream_limit is not None and downstream_limit < 1:
        raise InputError(f"the downstream limit must be at least 1, got {downstream_limit}")
    swept = _subscriber(scenario, subscriber)
    base = scenario
    if isinstance(scenario, TopicScenario) and swept is not None:
        # its bounds: its function's reserved concurrency, its mapping's own setting
        base = scenario.subscriber_scenario(scenario.subscribers.index(swept))
    assert isinstance(base, Scenario)
    chosen = sorted(set(values)) if values is not None else default_values(base)
    if not chosen:
        raise InputError("no maximum_concurrency values to try")
    settings = tuple(_evaluate(scenario, v, downstream_limit, swept) for v in chosen)
    recommendation, reason = _recommend(settings, downstream_limit)
    return Plan(scenario.to_dict(), downstream_limit, settings, recommendation, reason,
                subscriber)


def _subscriber(scenario: Scenario | TopicScenario, name: str | None
                ) -> SubscriberSpec | None:
    """The topic subscriber ``name`` names, or ``None`` for a queue scenario.

    Raises:
        InputError: a topic scenario without a name or with an unknown one, or a name
            for a queue scenario.
    """
    if not isinstance(scenario, TopicScenario):
        if name is not None:
            raise InputError(f"subscriber {name!r}: only a topic scenario has subscribers; "
                             "this one has one queue, whose mapping is swept")
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
