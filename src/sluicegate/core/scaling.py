"""Scaling policies: how many batches a mapping may have in flight, moment to moment.

A policy observes what its mapping sees (receives full or empty, invocation outcomes,
throttles) and answers :meth:`ScalingPolicy.limit`. The mapping runs that many pollers,
so the limit is the most invocations it will have in flight. Policies are pure: every
method takes ``now`` (seconds) and none reads a clock.

- :class:`FixedScaling`: a constant limit, for users who know what they want.
- :class:`AwsScaling`: AWS's standard-queue poller scaling as documented and as observed
  (BEHAVIOURS.md), so that users can predict what AWS will do with their configuration.

Where AWS does not publish a number the constant says so and which observation it
follows; the error-backoff values are starting points that a simulator calibration
(BEHAVIOURS.md observation 7) is expected to refine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sluicegate.core.config import DEFAULT_SCALING_CEILING, MappingConfig
from sluicegate.core.types import BatchOutcome, OutcomeKind
from sluicegate.errors import ConfigError

__all__ = [
    "BACKOFF_FLOOR",
    "DEFAULT_FIXED_CONCURRENCY",
    "ERROR_BACKOFF_FACTOR",
    "ERROR_HOLD",
    "IDLE_POLLERS",
    "IDLE_SCALE_DOWN_AFTER",
    "INITIAL_POLLERS",
    "LONG_IDLE_AFTER",
    "MIN_IDLE_POLLERS",
    "SCALE_UP_PER_MINUTE",
    "SCALE_UP_RATE",
    "THROTTLE_BACKOFF_FACTOR",
    "THROTTLE_HOLD",
    "AwsScaling",
    "FixedScaling",
    "ScalingPolicy",
    "ScalingStatistics",
    "make_policy",
]

INITIAL_POLLERS = 5
"""Concurrent batches a standard-queue mapping starts with when messages appear (Lambda
developer guide, "Configuring scaling behavior for SQS event source mappings";
BEHAVIOURS.md observation 1)."""

SCALE_UP_PER_MINUTE = 300
"""Concurrent invocations added per minute while messages remain (same page; +300/min since
the November 2023 "faster polling scale-up" launch, +60/min before)."""

SCALE_UP_RATE = SCALE_UP_PER_MINUTE / 60.0
""":data:`SCALE_UP_PER_MINUTE` as a continuous rate, in concurrency per second (5/s)."""

IDLE_POLLERS = 5
"""Concurrency a mapping scales back to when its queue goes idle (same page: "scales back
down to 5")."""

MIN_IDLE_POLLERS = 2
"""Concurrency after a long idle period (same page: Lambda "may optimise to 2 concurrent
pollers" to save SQS calls)."""

IDLE_SCALE_DOWN_AFTER = 20.0
"""Seconds of empty receives (measured from the first empty receive after the last
non-empty one) before the level drops to :data:`IDLE_POLLERS`. AWS does not say how fast
it scales down; sluicegate's choice is one full long poll (20 s): by then every poller has
had a whole long poll come back empty, so a short gap in traffic does not collapse the
level while a drained queue does (the "sharp drop" of BEHAVIOURS.md observation 3)."""

LONG_IDLE_AFTER = 300.0
"""Seconds of empty receives before the level drops to :data:`MIN_IDLE_POLLERS`. AWS does
not say; sluicegate's choice (five minutes, a period clearly "long" next to the 20 s long
poll)."""

ERROR_BACKOFF_FACTOR = 0.997
"""Multiplier applied to the level on each function error when ReportBatchItemFailures is
off (AWS: "gradually reduces the concurrency"; the factor is not published).

Calibrated against the simulator on BEHAVIOURS.md observation 7 (preset ``aws-errors``:
50 ms handlers, 2,000 msg/s so the load needs 100 concurrent invocations, errors thrown
from minute 5 to 9). Observed: 1% errors cut throughput ~20%, 10% cut it ~85%. Measured
with 0.997 and :data:`ERROR_HOLD` 0.03 s: 22.5% and 84.2% (0.998 gave 9.0% and 82%;
0.996 gave 32% and 86%). A per-error cut makes the steady level depend on the error
*rate*: with a level L, errors arrive at p*L/d per second and the level settles where
growth (5/s, paused by :data:`ERROR_HOLD` after each error) meets the cuts. Loads of
another size give other cuts."""

ERROR_HOLD = 0.03
"""Seconds after a function error during which the level does not grow (AWS does not
publish one). Starting value chosen with :data:`ERROR_BACKOFF_FACTOR` (see there): once
errors come faster than one per hold, growth stops altogether, which is why ten times the
error rate cuts throughput far more than ten times the cuts alone would."""

THROTTLE_BACKOFF_FACTOR = 0.95
"""Multiplier applied to the level on each throttle (AWS: throttled invokes are retried
"while reducing concurrency"; the factor is not published). sluicegate's choice: a gentle
5% cut, so that a mapping over a function's reserved concurrency settles near it (the
observed overshoot of BEHAVIOURS.md observation 5 stays small) rather than collapsing."""

THROTTLE_HOLD = 1.0
"""Seconds after a throttle during which the level does not grow (sluicegate's choice:
about the first throttle-retry backoff, so growth resumes once retries succeed)."""

BACKOFF_FLOOR = 2
"""Error and throttle backoff never take the level below this (sluicegate's choice: the
lowest concurrency AWS itself runs, the 2 pollers of an idle mapping, which is also
MaximumConcurrency's minimum). A configured cap below it still wins."""

DEFAULT_FIXED_CONCURRENCY = 10
"""The ``fixed`` policy's limit when neither ``maximum_concurrency`` nor a positive
reserved concurrency gives one. sluicegate's choice: enough parallelism to keep a
typical I/O-bound handler busy on one machine without flooding its downstream."""

_EPSILON = 1e-5
"""Tolerance (in level units) when flooring the level: with epoch-second times (~1.7e9)
float rounding in ``rate * elapsed`` reaches ~1e-6, and the level must read k at the very
time :meth:`AwsScaling.next_change` announced for k."""


@dataclass(frozen=True, slots=True)
class ScalingStatistics:
    """What a policy shows in a status display.

    Attributes:
        policy: ``"aws"`` or ``"fixed"``.
        limit: concurrent batches allowed now.
        level: the policy's continuous level (``limit`` is its floor).
        growing: whether the level is rising by itself.
        held_until: time until which growth is held after an error or throttle, or
            ``None`` when not held.
    """

    policy: str
    limit: int
    level: float
    growing: bool
    held_until: float | None


@runtime_checkable
class ScalingPolicy(Protocol):
    """What a mapping asks of a scaling policy. All times are seconds."""

    def limit(self, now: float) -> int:
        """Concurrent batches allowed at ``now`` (>= 0)."""
        ...

    def on_receive(self, now: float, count: int) -> None:
        """A receive returned ``count`` records (0: an empty receive)."""
        ...

    def on_outcome(self, now: float, outcome: BatchOutcome) -> None:
        """An invocation ended with ``outcome``."""
        ...

    def on_throttle(self, now: float) -> None:
        """An invocation was throttled (no concurrency slot)."""
        ...

    def next_change(self, now: float) -> float | None:
        """The earliest time after ``now`` when :meth:`limit` grows by itself, or ``None``
        when it will not change without an event."""
        ...

    def statistics(self, now: float) -> ScalingStatistics:
        """A snapshot for status displays."""
        ...


class FixedScaling:
    """A constant limit.

    Parameters:
        limit: concurrent batches allowed, >= 0.

    Raises:
        ConfigError: a negative or non-integer limit.
    """

    __slots__ = ("_limit",)

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigError("limit", limit, "an integer >= 0", "fixed scaling")
        self._limit = limit

    def __repr__(self) -> str:
        return f"FixedScaling({self._limit})"

    def limit(self, now: float) -> int:
        """The constant limit."""
        return self._limit

    def on_receive(self, now: float, count: int) -> None:
        """Ignored."""

    def on_outcome(self, now: float, outcome: BatchOutcome) -> None:
        """Ignored."""

    def on_throttle(self, now: float) -> None:
        """Ignored."""

    def next_change(self, now: float) -> float | None:
        """Always ``None``: the limit never changes."""
        return None

    def statistics(self, now: float) -> ScalingStatistics:
        """A snapshot: the constant limit."""
        return ScalingStatistics("fixed", self._limit, float(self._limit), False, None)


class AwsScaling:
    """AWS's standard-queue poller scaling.

    The policy keeps a continuous *level*; the limit is its floor, never above the cap
    ``min(ceiling, maximum_concurrency)``.

    - Before any message, and when messages appear after an idle period, the level is
      :data:`INITIAL_POLLERS` (5): idle pollers keep long-polling, which is how the first
      messages are found.
    - While receives come back non-empty, the level grows continuously at
      :data:`SCALE_UP_RATE` (5/s = +300/min). Growth is judged on the latest receive: an
      empty receive pauses it, the next non-empty one resumes it. (Under a backlog every
      long poll returns records, so growth is steady; a queue that is nearly drained
      returns a mix and growth slows.)
    - Idle: after :data:`IDLE_SCALE_DOWN_AFTER` of empty receives the level drops to
      :data:`IDLE_POLLERS`, after :data:`LONG_IDLE_AFTER` to :data:`MIN_IDLE_POLLERS`.
      Not when ``maximum_concurrency`` is set: AWS says the scale-down does not happen
      then, which sluicegate reads as "the level reached is kept while idle" (its pollers
      stay and long-poll), so the next burst starts from there.
    - Function errors (``outcome.function_error``) with ReportBatchItemFailures off: the
      level is multiplied by :data:`ERROR_BACKOFF_FACTOR` and growth is held for
      :data:`ERROR_HOLD`. With it on, errors change nothing (AWS: "does not scale down
      polling on invocation failures").
    - Throttles: level times :data:`THROTTLE_BACKOFF_FACTOR`, growth held for
      :data:`THROTTLE_HOLD`.
    - Backoff never takes the level below :data:`BACKOFF_FLOOR` (or the cap if lower).

    Decreases happen only on events (a receive, an outcome, a throttle), so the limit
    changes by itself only when growing, which :meth:`next_change` predicts exactly.

    Parameters:
        maximum_concurrency: the mapping's maximum concurrency, or ``None``.
        report_batch_item_failures: whether the mapping has ReportBatchItemFailures.
        ceiling: the per-mapping ceiling (default 1,250; older AWS pages say 1,000).

    Raises:
        ConfigError: a ceiling below 1 or a maximum concurrency below 1.
    """

    __slots__ = (
        "_active",
        "_anchor",
        "_cap",
        "_floor",
        "_growing",
        "_hold_until",
        "_level",
        "_quiet_since",
        "ceiling",
        "maximum_concurrency",
        "report_batch_item_failures",
    )

    def __init__(
        self,
        maximum_concurrency: int | None,
        report_batch_item_failures: bool,
        ceiling: int = DEFAULT_SCALING_CEILING,
    ) -> None:
        if isinstance(ceiling, bool) or not isinstance(ceiling, int) or ceiling < 1:
            raise ConfigError("scaling_ceiling", ceiling, "an integer >= 1", "aws scaling")
        if maximum_concurrency is not None and (
            isinstance(maximum_concurrency, bool)
            or not isinstance(maximum_concurrency, int)
            or maximum_concurrency < 1
        ):
            raise ConfigError(
                "maximum_concurrency", maximum_concurrency, "an integer >= 1 or None",
                "aws scaling",
            )
        self.maximum_concurrency = maximum_concurrency
        self.report_batch_item_failures = bool(report_batch_item_failures)
        self.ceiling = ceiling
        cap = ceiling if maximum_concurrency is None else min(ceiling, maximum_concurrency)
        self._cap = cap
        self._level = float(min(INITIAL_POLLERS, cap))
        self._floor = int(self._level + _EPSILON)
        """The limit at ``_level`` (kept with it: the fast path of :meth:`limit`)."""
        self._anchor = float("-inf")
        self._growing = False
        self._hold_until = float("-inf")
        self._active = False
        self._quiet_since: float | None = None

    def __repr__(self) -> str:
        return (
            f"AwsScaling(maximum_concurrency={self.maximum_concurrency}, "
            f"report_batch_item_failures={self.report_batch_item_failures}, "
            f"ceiling={self.ceiling}, level={self._level:.2f})"
        )

    # ------------------------------------------------------------------ level

    def _level_at(self, now: float) -> float:
        level = self._level
        if not self._growing:
            return level
        start = max(self._hold_until, self._anchor)
        if now <= start:
            return level
        level += SCALE_UP_RATE * (now - start)
        return level if level < self._cap else float(self._cap)

    def _settle(self, now: float) -> None:
        """Fold growth up to ``now`` into the stored level (times never go backwards)."""
        if now > self._anchor:
            self._level = level = self._level_at(now)
            self._floor = int(level + _EPSILON)
            self._anchor = now

    def _cut(self, factor: float) -> None:
        level = self._level
        floor = min(BACKOFF_FLOOR, self._cap)
        cut = level * factor
        if cut < floor:
            cut = min(level, floor)
        self._level = cut
        self._floor = int(cut + _EPSILON)

    def level(self, now: float) -> float:
        """The continuous level at ``now`` (the limit is its floor)."""
        return self._level_at(now)

    def limit(self, now: float) -> int:
        """Concurrent batches allowed at ``now``: the floor of the level."""
        if self._growing and self._level < self._cap:
            level = self._level_at(now)
            if level >= self._cap and now > self._anchor:
                # Growth reached the cap: fold it in, so later calls take the fast path
                # (the level stays at the cap until an event cuts it, which settles first).
                self._level = level
                self._floor = int(level + _EPSILON)
                self._anchor = now
            return int(level + _EPSILON)
        return self._floor

    def next_change(self, now: float) -> float | None:
        """When the limit next grows by one, if it is growing; else ``None``."""
        if not self._growing:
            return None
        current = self._level_at(now)
        if current + _EPSILON >= self._cap:
            return None
        target = int(current + _EPSILON) + 1
        start = max(self._hold_until, self._anchor)
        when = start + (target - self._level) / SCALE_UP_RATE
        return max(now, when)

    # ------------------------------------------------------------------ events

    def on_receive(self, now: float, count: int) -> None:
        """Non-empty: messages are there, grow (restarting at 5 after an idle period).
        Empty: pause growth, and scale down once idle long enough (see the class)."""
        if count > 0:
            self._quiet_since = None
            if not self._growing:
                self._settle(now)
                self._growing = True
            if not self._active:
                self._active = True
                start = float(min(INITIAL_POLLERS, self._cap))
                if self._level < start:
                    self._settle(now)
                    self._level = start
                    self._floor = int(start + _EPSILON)
            return
        if self._growing:
            self._settle(now)
            self._growing = False
        quiet_since = self._quiet_since
        if quiet_since is None:
            self._quiet_since = now
            return
        if self.maximum_concurrency is not None:
            return
        quiet = now - quiet_since
        if quiet >= IDLE_SCALE_DOWN_AFTER:
            self._active = False
            target = MIN_IDLE_POLLERS if quiet >= LONG_IDLE_AFTER else IDLE_POLLERS
            if self._level > target:
                self._level = float(target)
                self._floor = target

    def on_outcome(self, now: float, outcome: BatchOutcome) -> None:
        """A function error without ReportBatchItemFailures backs the level off."""
        if outcome.kind is not OutcomeKind.ERROR or self.report_batch_item_failures:
            return
        self._settle(now)
        self._cut(ERROR_BACKOFF_FACTOR)
        hold = now + ERROR_HOLD
        self._hold_until = max(self._hold_until, hold)

    def on_throttle(self, now: float) -> None:
        """A throttle backs the level off and holds growth."""
        self._settle(now)
        self._cut(THROTTLE_BACKOFF_FACTOR)
        hold = now + THROTTLE_HOLD
        self._hold_until = max(self._hold_until, hold)

    def statistics(self, now: float) -> ScalingStatistics:
        """A snapshot: limit, level, whether growing, the hold."""
        level = self._level_at(now)
        return ScalingStatistics(
            "aws",
            int(level + _EPSILON),
            level,
            self._growing and level < self._cap,
            self._hold_until if self._hold_until > now else None,
        )


def make_policy(
    config: MappingConfig, *, reserved_concurrency: int | None = None
) -> ScalingPolicy:
    """Build the policy ``config.scaling`` names.

    Parameters:
        config: the mapping.
        reserved_concurrency: the target function's reserved concurrency, if any; the
            ``fixed`` policy uses it when the mapping sets no maximum concurrency.

    Returns:
        ``"aws"``: :class:`AwsScaling` with the mapping's maximum concurrency,
        ReportBatchItemFailures and ceiling. ``"fixed"``: :class:`FixedScaling` at
        ``maximum_concurrency``, else a positive ``reserved_concurrency``, else
        :data:`DEFAULT_FIXED_CONCURRENCY`.

    Raises:
        ConfigError: an unknown policy name.
    """
    if config.scaling == "aws":
        return AwsScaling(
            config.maximum_concurrency, config.report_batch_item_failures, config.scaling_ceiling
        )
    if config.scaling == "fixed":
        if config.maximum_concurrency is not None:
            return FixedScaling(config.maximum_concurrency)
        if reserved_concurrency:
            return FixedScaling(reserved_concurrency)
        return FixedScaling(DEFAULT_FIXED_CONCURRENCY)
    raise ConfigError("scaling", config.scaling, "'aws' or 'fixed'", f"mapping {config.name}")
