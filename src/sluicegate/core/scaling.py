"""Scaling policies: how many batches a mapping may have in flight, moment to moment.

A policy observes what its mapping sees (receives full or empty, invocation outcomes,
throttles) and answers :meth:`ScalingPolicy.limit`. The mapping runs that many pollers,
so the limit is the most invocations it will have in flight. Policies are pure: every
method takes ``now`` (seconds) and none reads a clock.

- :class:`FixedScaling`: a constant limit, for users who know what they want.
- :class:`AwsScaling`: AWS's standard-queue poller scaling as documented and as observed
  (BEHAVIOURS.md), so that users can predict what AWS will do with their configuration.

Where AWS does not publish a number the constant says so and which observation it
follows. The calibration against the presets of :mod:`sluicegate.sim.presets` (one per
BEHAVIOURS.md experiment) is described in docs/scenarios.md, "Calibration of the aws
policy".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

from sluicegate.core.config import DEFAULT_SCALING_CEILING, MappingConfig
from sluicegate.core.settings import SETTINGS
from sluicegate.core.types import BatchOutcome, OutcomeKind
from sluicegate.errors import ConfigError

__all__ = [
    "BACKOFF_FLOOR",
    "DEFAULT_FIXED_CONCURRENCY",
    "ENABLE_SCALE_UP_DELAY",
    "ERROR_BACKOFF_FACTOR",
    "ERROR_HOLD",
    "ERROR_RESTORE_AFTER",
    "FAST_START_FOR",
    "FAST_START_RATE",
    "IDLE_POLLERS",
    "IDLE_SCALE_DOWN_AFTER",
    "INITIAL_POLLERS",
    "INVOCATION_TIME_WEIGHT",
    "LONG_IDLE_AFTER",
    "MIN_IDLE_POLLERS",
    "SCALE_UP_PER_MINUTE",
    "SCALE_UP_RATE",
    "SHED_PER_RECEIVE",
    "SHED_WAIT_SHARE",
    "SURPLUS_HOLD",
    "SURPLUS_WAIT",
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

ENABLE_SCALE_UP_DELAY = 60.0
"""Seconds after a mapping is enabled (resumed) during which it runs its first
:data:`INITIAL_POLLERS` without growing. AWS: "starts processing five batches at a time ...
If messages are still available, Lambda increases ..."; read with BEHAVIOURS.md observation
1, where cumulative cold starts and invocations over the first minute after resuming over a
1k, 10k, 100k or 1M backlog are the same: any growth inside that minute drains the 1k
backlog first and makes the depths differ, so the first scale-up comes a minute after the
mapping is enabled (calibrated on preset ``aws-queue-depth``; also fixes ``aws-batch-size``,
whose first minute runs 5 batches for every batch size)."""

FAST_START_RATE = 25.0
"""Concurrency per second added during the first :data:`FAST_START_FOR` seconds after
traffic reaches an enabled, idle mapping (its pollers long-polling). AWS's 2023 "faster
polling scale-up" targets "spiky workloads": a burst on a live queue is met faster than the
steady +300/min. AWS publishes no rate; 25/s for 3 s (5 -> 80) is the calibration against
preset ``aws-processing-time`` (BEHAVIOURS.md observation 3): the 100 ms function's queue
stays near empty (at most one second of arrivals at every 10 s gauge) while the 200-600 ms
functions still build the backlog whose drain is their ramp-up."""

FAST_START_FOR = 3.0
"""Seconds of :data:`FAST_START_RATE` growth after traffic reaches an idle mapping (see
there)."""

SURPLUS_WAIT = 0.05
"""A non-empty receive that took at least this long (seconds) was a long poll waiting for
a message: the queue was empty when the poller asked, so the mapping had a poller to spare
(SQS answers a receive with messages ready in tens of milliseconds). Such a receive holds
growth for :data:`SURPLUS_HOLD`. This stops the ramp-up once the backlog is drained
(BEHAVIOURS.md observation 6: the mapping "settles on a concurrency", above what the load
needs) instead of climbing to the ceiling as long as every long poll ends with a message;
the surplus left by the ramp-up is then shed slowly (:data:`SHED_PER_RECEIVE`). sluicegate's
choice; in the simulator a surplus poller waits about (idle pollers) / (arrival rate)."""

SURPLUS_HOLD = 1.0
"""Seconds a receive that waited :data:`SURPLUS_WAIT` holds growth (level and fleet level).
sluicegate's choice: one second is many receives at any load that keeps pollers busy, so a
mapping with pollers to spare stops growing, while a backlog (every receive answered at
once) grows without pause."""

SHED_WAIT_SHARE = 1.0
"""A non-empty receive that waited at least this share of the mean invocation time (and
at least :data:`SURPLUS_WAIT`) shows a *surplus* poller: it idled as long as one whole
invocation, so the fleet could lose it and still keep up. Each such receive sheds
:data:`SHED_PER_RECEIVE` from the level (the fleet's scale-down once the backlog is gone:
"scales back down" in AWS's words, read by sluicegate as also applying to pollers a steady
load does not need). Relative to the invocation time, so that a short and a long function
with the same share of idle pollers see surplus evidence on the same share of their
receives; the long function's pollers receive rarely (they spend their time invoking), so
its fleet sheds its margin more slowly (BEHAVIOURS.md observation 6: the spare margin is
larger for longer functions). Calibrated with :data:`SHED_PER_RECEIVE` on preset
``aws-margin``: 0.5 sheds the 400 ms function to 1.28x its need by minute 4, barely above
the 50 ms function's 1.27x; 2 leaves the 50 ms function at 1.61x, above the 400 ms
function's 1.52x."""

SHED_PER_RECEIVE = 0.002
"""Level shed per receive that shows a surplus poller (see :data:`SHED_WAIT_SHARE`); never
below :data:`IDLE_POLLERS`, and never with ``maximum_concurrency`` set (AWS does not scale
down then). Per receive, not per second: a fleet of F pollers serving a function of
duration d receives about F / d times a second, so its margin (F over the need) falls at
about this rate / d per second while its pollers idle, eight times faster at 50 ms than
at 400 ms. Calibrated on preset ``aws-margin`` (BEHAVIOURS.md observation 6): over the
last minute of the 4-minute run the 50 ms function (440 msg/s) keeps 1.27x its need and
the 400 ms one (300 msg/s) 1.42x (at 0.001: 1.40x and 1.47x; at 0.004: 1.25x and 1.35x;
without shedding 2.41x and 1.53x, the ramp's high-water marks)."""

INVOCATION_TIME_WEIGHT = 0.05
"""Weight of each invocation in the policy's mean invocation time (an exponentially
weighted mean over about the last 20 invocations, init included); sluicegate's choice:
it forgets the cold starts of a ramp-up within a fraction of a second of steady load."""

ERROR_RESTORE_AFTER = 10.0
"""Seconds without a function error after which the error backoff ends and the level
returns at once to the fleet level (see :class:`AwsScaling`). AWS publishes neither; the
value is sluicegate's choice, long next to the gap between two errors at a 1% error rate
(~16 errors/s in preset ``aws-errors``), short next to the 4-minute error window.
Calibrated with BEHAVIOURS.md observation 7 ("when the errors stop, invocations spike to
about ten times the steady level while the backlog drains")."""

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
"""Multiplier applied to the level on each failure: a function error, or with
ReportBatchItemFailures a partial response (see :class:`AwsScaling`; AWS: "gradually
reduces the concurrency"; the factor is not published).

Calibrated against the simulator on BEHAVIOURS.md observation 7 (preset ``aws-errors``:
50 ms handlers, 2,000 msg/s so the load needs 100 concurrent invocations, errors thrown
from minute 5 to 9). Observed: 1% errors cut throughput ~20%, 10% cut it ~85%. Measured
with 0.997 and :data:`ERROR_HOLD` 0.03 s: 22.5% and 84.2% (0.998 gave 9.0% and 82%;
0.996 gave 32% and 86%); with the level settled at 150 before the errors (not at the
ceiling, :data:`SURPLUS_WAIT`), 26.4% and 84.2%; with the fleet then shedding its
surplus to 120 (:data:`SHED_PER_RECEIVE`), 26.5% and 84.2%, so it was not recalibrated.
A per-error cut makes the steady level depend on the error
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
about the first throttle-retry backoff, so growth resumes once retries succeed). Further
throttles inside the hold extend it without cutting again: the burst of throttles one
over-reach causes (every poller above the function's capacity throttles at once) counts as
one signal, so a mapping over the account's or the function's concurrency steps down by
:data:`THROTTLE_BACKOFF_FACTOR` per second until it fits instead of collapsing to
:data:`BACKOFF_FLOOR` (seen in preset ``aws-errors``, whose recovery reaches the account's
1,000)."""

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


class ScalingPolicy(Protocol):
    """What a mapping asks of a scaling policy. All times are seconds.

    A static protocol (not ``runtime_checkable``: the compiled build, see setup.py,
    cannot have that).
    """

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

    def on_receive(self, now: float, count: int, waited: float = 0.0) -> None:
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


AWS_STATE: Final = (
        "_active",
        "_anchor",
        "_cap",
        "_enable_until",
        "_fast_until",
        "_fleet",
        "_floor",
        "_growing",
        "_hold_until",
        "_invocation_time",
        "_last_error",
        "_level",
        "_quiet_since",
        "_surplus_until",
        "_throttle_until",
        "ceiling",
        "maximum_concurrency",
        "report_batch_item_failures",
)
"""The attributes that make up an :class:`AwsScaling`'s whole state (see
:meth:`AwsScaling.snapshot`)."""


class AwsScaling:
    """AWS's standard-queue poller scaling.

    The policy keeps a continuous *level*; the limit is its floor, never above the cap
    ``min(ceiling, maximum_concurrency)``. Beside it, the *fleet* level is what the level
    would be without the error backoff (it never falls below the level).

    - Before any message, and when messages appear after an idle period, the level is
      :data:`INITIAL_POLLERS` (5): idle pollers keep long-polling, which is how the first
      messages are found. Traffic reaching an enabled idle mapping gets AWS's faster
      scale-up first: :data:`FAST_START_RATE` for :data:`FAST_START_FOR` seconds. A
      mapping just enabled (:meth:`on_resume`) instead keeps its 5 for
      :data:`ENABLE_SCALE_UP_DELAY` (BEHAVIOURS.md observation 1).
    - While receives come back non-empty *at once*, the level grows continuously at
      :data:`SCALE_UP_RATE` (5/s = +300/min). Growth is judged on the latest receive: an
      empty receive pauses it, the next non-empty one resumes it. A non-empty receive
      that waited :data:`SURPLUS_WAIT` or more (a long poll that had to wait for a
      message: a poller to spare) holds growth for :data:`SURPLUS_HOLD`. So under a
      backlog the level grows steadily, and once the pollers have caught up it settles
      where it is (observation 6).
    - Idle: after :data:`IDLE_SCALE_DOWN_AFTER` of empty receives the level drops to
      :data:`IDLE_POLLERS`, after :data:`LONG_IDLE_AFTER` to :data:`MIN_IDLE_POLLERS`.
      Not when ``maximum_concurrency`` is set: AWS says the scale-down does not happen
      then, which sluicegate reads as "the level reached is kept while idle" (its pollers
      stay and long-poll), so the next burst starts from there.
    - Failures (:meth:`on_outcome`): the level is multiplied by
      :data:`ERROR_BACKOFF_FACTOR` and growth is held for :data:`ERROR_HOLD`; the fleet
      level is not cut and keeps growing while the backlog the failures build makes
      receives come back at once. After :data:`ERROR_RESTORE_AFTER` without a failure the
      next receive ends the backoff: the level returns to the fleet level, and the
      backlog of the failure window drains in the recovery spike of observation 7. What
      counts as a failure depends on ReportBatchItemFailures. Off: a function error
      (``outcome.function_error``: an exception, a timeout, an invalid response). On: a
      partial response, records reported failed; not a function error, since AWS
      documents that with ReportBatchItemFailures it "does not scale down polling on
      invocation failures", while BEHAVIOURS.md observation 7 saw failures returned as
      batch item failures collapse throughput exactly as thrown errors do. The two
      statements fix the rule: reported item failures drive the backoff, failed
      invocations do not (tests/sim/test_presets.py pins the observation,
      tests/core/test_scaling.py the documented rule).
    - Throttles: level and fleet level times :data:`THROTTLE_BACKOFF_FACTOR`, growth held
      for :data:`THROTTLE_HOLD` (the function cannot take more: the fleet shrinks too);
      throttles inside that hold extend it without cutting again.
    - Backoff never takes the level below :data:`BACKOFF_FLOOR` (or the cap if lower).
    - Held (:meth:`on_held`): another term of the mapping's limit (a breaker, an
      operator) holds it at 0, so nothing is received: growth pauses as after an empty
      receive (sluicegate's rule; AWS has no such terms).

    Decreases happen only on events (a receive, an outcome, a throttle), so the limit
    changes by itself only when growing, which :meth:`next_change` predicts exactly.

    Parameters:
        maximum_concurrency: the mapping's maximum concurrency, or ``None``.
        report_batch_item_failures: whether the mapping has ReportBatchItemFailures.
        ceiling: the per-mapping ceiling (default 1,250; older AWS pages say 1,000).

    Raises:
        ConfigError: a ceiling or a maximum concurrency outside its setting's range
            (:data:`~sluicegate.core.settings.SETTINGS`: 1-100,000 and 2-1,000).
    """

    observes_receive_wait = True
    """Tells :class:`~sluicegate.core.mapping.QueueMapping` to pass ``waited`` to
    :meth:`on_receive`."""

    observes_invocation_time = True
    """Tells :class:`~sluicegate.core.mapping.QueueMapping` to pass ``duration`` to
    :meth:`on_outcome`."""

    observes_hold = True
    """Tells :class:`~sluicegate.core.mapping.QueueMapping` to call :meth:`on_held`."""

    __slots__ = AWS_STATE

    def __init__(
        self,
        maximum_concurrency: int | None,
        report_batch_item_failures: bool,
        ceiling: int = DEFAULT_SCALING_CEILING,
    ) -> None:
        # the ranges are the settings' (sluicegate.core.settings), as for MappingConfig
        ceiling = SETTINGS["scaling_ceiling"].check(ceiling, "aws scaling")
        maximum_concurrency = SETTINGS["maximum_concurrency"].check(
            maximum_concurrency, "aws scaling"
        )
        self.maximum_concurrency = maximum_concurrency
        self.report_batch_item_failures = bool(report_batch_item_failures)
        self.ceiling = ceiling
        cap = ceiling if maximum_concurrency is None else min(ceiling, maximum_concurrency)
        self._cap = cap
        self._level = float(min(INITIAL_POLLERS, cap))
        self._fleet = self._level
        self._floor = int(self._level + _EPSILON)
        """The limit at ``_level`` (kept with it: the fast path of :meth:`limit`)."""
        self._anchor = float("-inf")
        self._growing = False
        self._hold_until = float("-inf")
        """Error/throttle hold: the level (not the fleet level) does not grow before it."""
        self._enable_until = float("-inf")
        """Enable hold (:data:`ENABLE_SCALE_UP_DELAY`): neither grows before it."""
        self._fast_until = float("-inf")
        """Growth is at :data:`FAST_START_RATE` before it."""
        self._last_error: float | None = None
        """Time of the last function error while the level is backed off, else None."""
        self._throttle_until = float("-inf")
        """End of the current throttle hold (one cut per hold)."""
        self._surplus_until = float("-inf")
        """Surplus hold (:data:`SURPLUS_HOLD`): neither grows before it."""
        self._active = False
        self._quiet_since: float | None = None
        self._invocation_time = 0.0
        """Mean invocation time (seconds; 0 before the first), weighted by
        :data:`INVOCATION_TIME_WEIGHT`."""

    def __repr__(self) -> str:
        return (
            f"AwsScaling(maximum_concurrency={self.maximum_concurrency}, "
            f"report_batch_item_failures={self.report_batch_item_failures}, "
            f"ceiling={self.ceiling}, level={self._level:.2f})"
        )

    # ------------------------------------------------------------------ level

    def _grown(self, start: float, now: float) -> float:
        """Growth between ``start`` and ``now`` (fast start, then the steady rate)."""
        if now <= start:
            return 0.0
        fast_until = self._fast_until
        if start >= fast_until:
            return SCALE_UP_RATE * (now - start)
        if now <= fast_until:
            return FAST_START_RATE * (now - start)
        return FAST_START_RATE * (fast_until - start) + SCALE_UP_RATE * (now - fast_until)

    def _level_at(self, now: float) -> float:
        level = self._level
        if not self._growing:
            return level
        start = max(self._hold_until, self._enable_until, self._surplus_until, self._anchor)
        if now <= start:
            return level
        level += self._grown(start, now)
        return level if level < self._cap else float(self._cap)

    def _fleet_at(self, now: float) -> float:
        fleet = self._fleet
        if self._growing:
            fleet += self._grown(max(self._enable_until, self._surplus_until, self._anchor), now)
        fleet = fleet if fleet < self._cap else float(self._cap)
        level = self._level_at(now)
        return fleet if fleet > level else level

    def _settle(self, now: float) -> None:
        """Fold growth up to ``now`` into the stored levels (times never go backwards)."""
        if now > self._anchor:
            self._fleet = self._fleet_at(now)
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

    def fleet_level(self, now: float) -> float:
        """The level without the error backoff at ``now`` (see the class)."""
        return self._fleet_at(now)

    def limit(self, now: float) -> int:
        """Concurrent batches allowed at ``now``: the floor of the level."""
        if self._growing and self._level < self._cap:
            level = self._level_at(now)
            if level >= self._cap and now > self._anchor:
                # Growth reached the cap: fold it in, so later calls take the fast path
                # (the level stays at the cap until an event cuts it, which settles first).
                self._settle(now)
            return int(level + _EPSILON)
        return self._floor

    def next_change(self, now: float) -> float | None:
        """When the limit next grows by one, if it is growing; else ``None``."""
        if not self._growing:
            return None
        current = self._level_at(now)
        if current + _EPSILON >= self._cap:
            return None
        need = int(current + _EPSILON) + 1 - self._level
        start = max(self._hold_until, self._enable_until, self._surplus_until, self._anchor)
        fast_until = self._fast_until
        if start < fast_until:
            room = FAST_START_RATE * (fast_until - start)
            if need <= room:
                return max(now, start + need / FAST_START_RATE)
            return max(now, fast_until + (need - room) / SCALE_UP_RATE)
        return max(now, start + need / SCALE_UP_RATE)

    def set_maximum_concurrency(self, now: float, maximum_concurrency: object) -> None:
        """A live change of the mapping's ``maximum_concurrency`` (``None``: unset): the
        growth so far is folded in at ``now``, then the cap follows the new value; a
        lower cap cuts the level at once, a higher one lets it grow on at the usual rate.

        Raises:
            ConfigError: a value outside the setting's range.
        """
        value = SETTINGS["maximum_concurrency"].check(maximum_concurrency, "aws scaling")
        self._settle(now)
        self.maximum_concurrency = value
        cap = self.ceiling if value is None else min(self.ceiling, value)
        self._cap = cap
        if self._level > cap:
            self._level = float(cap)
            self._floor = cap
        if self._fleet > cap:
            self._fleet = float(cap)

    # ------------------------------------------------------------------ events

    def on_resume(self, now: float) -> None:
        """The mapping was enabled: its first scale-up waits
        :data:`ENABLE_SCALE_UP_DELAY` (BEHAVIOURS.md observation 1)."""
        self._settle(now)
        self._enable_until = now + ENABLE_SCALE_UP_DELAY
        self._fast_until = float("-inf")

    def on_receive(self, now: float, count: int, waited: float = 0.0) -> None:
        """Non-empty: messages are there, grow (restarting at 5 after an idle period)
        unless the receive waited :data:`SURPLUS_WAIT` (a poller to spare). Empty: pause
        growth, and scale down once idle long enough (see the class).

        Parameters:
            now: when the receive returned.
            count: records returned.
            waited: seconds the receive was outstanding (0 when unknown).
        """
        if count > 0:
            self._quiet_since = None
            last_error = self._last_error
            if last_error is not None and now - last_error >= ERROR_RESTORE_AFTER:
                # errors have stopped: the backoff ends, the level returns to the fleet
                self._settle(now)
                self._last_error = None
                if self._fleet > self._level:
                    self._level = self._fleet
                    self._floor = int(self._fleet + _EPSILON)
            if not self._active:
                self._settle(now)
                self._active = True
                if now >= self._enable_until:
                    self._fast_until = now + FAST_START_FOR
                start = float(min(INITIAL_POLLERS, self._cap))
                if self._level < start:
                    self._level = start
                    self._floor = int(start + _EPSILON)
                self._fleet = max(self._fleet, self._level)
            if waited >= SURPLUS_WAIT:
                hold = now + SURPLUS_HOLD
                if hold > self._surplus_until:
                    self._settle(now)
                    self._surplus_until = hold
                if (waited >= SHED_WAIT_SHARE * self._invocation_time
                        and self.maximum_concurrency is None):
                    self._shed(now)
            if not self._growing:
                self._settle(now)
                self._growing = True
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
            self._fleet = min(self._fleet, self._level)
            self._last_error = None

    def on_held(self, now: float) -> None:
        """The mapping's limit is 0 at ``now`` (a breaker open, an operator's hold): it
        receives nothing, so growth pauses as after an empty receive, and the next
        non-empty receive resumes it. The idle scale-down does not start: the mapping is
        held, not idle."""
        if self._growing:
            self._settle(now)
            self._growing = False

    def _shed(self, now: float) -> None:
        """Lower the level and the fleet level by :data:`SHED_PER_RECEIVE` (not below
        :data:`IDLE_POLLERS` or the cap)."""
        self._settle(now)
        floor = float(min(IDLE_POLLERS, self._cap))
        level = self._level
        if level > floor:
            level = max(floor, level - SHED_PER_RECEIVE)
            self._level = level
            self._floor = int(level + _EPSILON)
        fleet = self._fleet - SHED_PER_RECEIVE
        self._fleet = fleet if fleet > level else level

    def on_outcome(self, now: float, outcome: BatchOutcome,
                   duration: float | None = None) -> None:
        """A failure backs the level off: a function error without
        ReportBatchItemFailures, records reported failed with it (see the class).

        Parameters:
            now: when the invocation ended.
            outcome: how it settled.
            duration: seconds it ran, init included (``None`` when unknown); kept in the
                mean invocation time that :data:`SHED_WAIT_SHARE` measures waits by.
        """
        if duration is not None and duration >= 0.0:
            mean = self._invocation_time
            self._invocation_time = (duration if mean == 0.0
                                     else mean + INVOCATION_TIME_WEIGHT * (duration - mean))
        failure = OutcomeKind.PARTIAL if self.report_batch_item_failures else OutcomeKind.ERROR
        if outcome.kind is not failure:
            return
        self._settle(now)
        self._cut(ERROR_BACKOFF_FACTOR)
        self._last_error = now
        hold = now + ERROR_HOLD
        self._hold_until = max(self._hold_until, hold)

    def on_invocation_times(self, now: float, mean: float, count: int) -> None:
        """``count`` invocations that ran ``mean`` seconds on average ended by ``now``:
        :meth:`on_outcome`'s ``duration`` for many at once (how a cluster's workers
        report them, :mod:`sluicegate.cluster.scaling`); the same as ``count`` calls with
        ``mean`` each."""
        if count <= 0 or not mean >= 0.0:
            return
        current = self._invocation_time
        if current == 0.0:
            self._invocation_time = mean
            return
        kept = (1.0 - INVOCATION_TIME_WEIGHT) ** count
        self._invocation_time = mean + kept * (current - mean)

    def invocation_time(self) -> float:
        """The mean invocation time (seconds; 0 before the first invocation ended)."""
        return self._invocation_time

    def on_throttle(self, now: float) -> None:
        """A throttle backs the level and the fleet level off and holds growth; throttles
        during the hold of an earlier one only extend the hold (see
        :data:`THROTTLE_HOLD`)."""
        if now < self._throttle_until:
            self._throttle_until = self._hold_until = max(self._hold_until,
                                                          now + THROTTLE_HOLD)
            return
        self._settle(now)
        self._cut(THROTTLE_BACKOFF_FACTOR)
        fleet = self._fleet * THROTTLE_BACKOFF_FACTOR
        self._fleet = fleet if fleet > self._level else self._level
        hold = now + THROTTLE_HOLD
        self._throttle_until = hold
        self._hold_until = max(self._hold_until, hold)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able values (times as given to the hooks), so that
        another instance can carry on from it (:meth:`restore`)."""
        return {name: getattr(self, name) for name in AWS_STATE}

    def restore(self, state: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`; unknown or missing fields are skipped, so a state
        written by another version is used as far as it fits."""
        for name in AWS_STATE:
            if name in state:
                setattr(self, name, state[name])

    def statistics(self, now: float) -> ScalingStatistics:
        """A snapshot: limit, level, whether growing, the hold."""
        level = self._level_at(now)
        held = max(self._hold_until, self._enable_until, self._surplus_until)
        return ScalingStatistics(
            "aws",
            int(level + _EPSILON),
            level,
            self._growing and level < self._cap,
            held if held > now else None,
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
        :data:`DEFAULT_FIXED_CONCURRENCY`. ``"adaptive"``: :class:`FixedScaling` at the
        adaptive limit's ``maximum``; the limit itself is the mapping's ``"adaptive"``
        term (:class:`~sluicegate.core.adaptive.AdaptiveLimit`).

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
    if config.scaling == "adaptive":
        # the level moves in the mapping's "adaptive" term (make_adaptive_term); the
        # policy holds its clamp's top
        adaptive = config.adaptive
        return FixedScaling(adaptive.maximum if adaptive is not None
                            else SETTINGS["maximum"].default)
    raise ConfigError("scaling", config.scaling, "'aws', 'fixed' or 'adaptive'",
                      f"mapping {config.name}")
