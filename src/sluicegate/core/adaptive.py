"""Adaptive concurrency limits: a mapping's limit that follows what its invocations say.

``scaling="adaptive"`` gives a mapping an :class:`AdaptiveLimit`, a term of its
:class:`~sluicegate.core.limit.ConcurrencyLimit` named ``"adaptive"``. It observes every
:class:`~sluicegate.core.signals.Sample` (an invocation that ended, a throttle) and moves
an estimate with one of three published update rules, from Netflix's concurrency-limits
library (``concurrency-limits-core``, package ``com.netflix.concurrency.limits.limit``):

``aimd`` (:class:`Aimd`, from ``AIMDLimit``)
    Loss based: +1 while the limit is used, times ``backoff_ratio`` on a drop (or a
    latency above ``drop_latency``).
``gradient2`` (:class:`Gradient2`, from ``Gradient2Limit``)
    Latency based: the ratio of a long-term average latency to the current one, bounded
    to [0.5, 1], scales the limit, plus ``queue_size`` of headroom, smoothed.
``vegas`` (:class:`Vegas`, from ``VegasLimit``, after TCP Vegas)
    Latency based: the queue the latency implies, ``limit x (1 - no_load / latency)``,
    grows the limit when small and shrinks it when large; drops shrink it.

The estimate is then clamped to ``minimum``..``maximum``, and being one term of the
minimum it never lifts the mapping above ``maximum_concurrency``, a reservation, the
pool or any other term.

**What a sample means.** Its latency is the downstream latency the handler reported
(``context.report(latency=...)``) when it reported one, else the invocation's duration. A
*drop* (Netflix's ``onDropped``) is a timeout, a throttle, or a reported overload
(``context.report(overload=True)``, even on an invocation that then failed): the
signals that say "too much". Any other function error (an exception, an unreadable
response) is *ignored* (Netflix's ``onIgnore``): a handler
failing on some messages says nothing about capacity, and backing off on it is what
collapses AWS's throughput under errors (BEHAVIOURS.md observation 7); set
``drop_on_error=True`` to count errors as drops.

**Growth only while used** (Netflix: grow only while in-flight >= limit / 2, so that an
idle service's limit does not drift up). sluicegate's pollers *are* its limit, and a
limit above what the load uses keeps spare environments warm, which is the
over-provisioning of AWS's pollers (BEHAVIOURS.md observation 6); so a sample grows the
limit only when the invocation's in-flight count (at its start) reached ``utilization``
of the limit, 0.9 by default (Netflix's rule is ``utilization=0.5``), or the whole limit
in force (the estimate's integer part: below 10, a decayed estimate's fraction would
otherwise put the threshold above anything the pollers can reach). Since an
invocation's in-flight count is read at its start, this also bounds growth to a factor of
``1 / utilization`` per invocation duration while a backlog drains. And where Netflix
holds an unused limit, sluicegate lets it *decay*: an update whose in-flight count is
below ``utilization x limit`` moves the estimate toward ``in_flight / utilization`` by
``1 - exp(-elapsed / decay_time)`` of the way (``elapsed``: seconds since the previous
update; ``decay_time`` 10 s), so the pollers a drained backlog called up retire (with
``decay_time=0`` the limit holds, as Netflix's does). Without a latency that grows with
concurrency (a function whose duration does not depend on how many run), growth stops
only there: the limit settles at about ``in-flight / utilization``.

**Processes sharing a downstream.** Each process running a mapping has its own adaptive
limit on its own invocations (a cluster's coordinator keeps it out of the mapping's
shared limit). Left alone, N processes would each grow as one limit does, so together
they would grow N times as fast, and, started together, in step: two AIMD limits each +1
a window move the downstream's load by 2 at once. So the cluster tells each limit how many
processes share the mapping and its rank among them (:meth:`AdaptiveLimit.share_with`):
every *increase* of the rule is divided by N (AIMD's +1, Vegas's ``beta`` and ``L``,
Gradient2's ``queue_size``), so N processes together grow as one limit would; decreases
stay each process's own, multiplicative, since each sees the overload itself. The limit
is the estimate plus ``rank / N``, rounded down: N processes with equal estimates e then
allow ``floor(N x e)`` together (Hermite's identity), one slot more at a time, where
rounding each down would add N slots every N-th update. Without a cluster N is 1 and
nothing changes.

**Windows** (Netflix's ``WindowedLimit``): samples are gathered and the rule runs once per
window of ``window`` seconds (1 s, its default) holding at least ``window_size`` samples
(10), with the window's average latency, largest in-flight count and whether any sample
dropped (a window with a drop but too few samples still applies the drop rule). A window
that ends with too few samples and no drop goes on until it has them: Netflix discards
it, which leaves a limit whose window holds fewer than ``window_size`` invocations
(``window x limit / latency``: 3 for a limit of 3, 0.25 s windows and 250 ms calls)
never growing, only falling on drops. With
``window=0`` every sample updates the estimate, as Netflix's ``SimpleLimiter`` feeds an
unwindowed limit: at thousands of invocations a second that makes the latency rules
whipsaw (measured: a capacity-200 downstream held between 80 and 220), so windows are the
default.

Pure: every method takes ``now`` and none reads a clock or a random generator; Vegas's
probe jitter is a deterministic sequence (:class:`GoldenJitter`), so simulations repeat
exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

from sluicegate.core.settings import SETTINGS
from sluicegate.core.signals import Sample, SampleKind
from sluicegate.errors import ConfigError

__all__ = [
    "ALGORITHMS",
    "TERM_ADAPTIVE",
    "AdaptiveConfig",
    "AdaptiveLimit",
    "AdaptiveStatistics",
    "Aimd",
    "Algorithm",
    "AlgorithmName",
    "GoldenJitter",
    "Gradient2",
    "Vegas",
    "make_algorithm",
]

TERM_ADAPTIVE: Final = "adaptive"
"""The name of the adaptive limit's term in a mapping's limit."""

AlgorithmName = Literal["aimd", "gradient2", "vegas"]
ALGORITHMS: Final[tuple[str, ...]] = SETTINGS["algorithm"].choices
"""The algorithms ``algorithm=`` accepts."""

AIMD_INITIAL: Final = 10
"""AIMDLimit's default initial limit."""
GRADIENT2_INITIAL: Final = 20
"""Gradient2Limit's default initial limit."""
VEGAS_INITIAL: Final = 20
"""VegasLimit's default initial limit."""
GRADIENT2_SMOOTHING: Final = 0.2
"""Gradient2Limit's default smoothing."""
VEGAS_SMOOTHING: Final = 1.0
"""VegasLimit's default smoothing (none)."""
GRADIENT2_WARMUP: Final = 10
"""Samples Gradient2Limit's long-term average takes as a plain mean before it decays
(``ExpAvgMeasurement``'s warm-up window)."""

_GOLDEN: Final = (math.sqrt(5.0) - 1.0) / 2.0


class GoldenJitter:
    """Vegas's probe jitter in [0.5, 1): ``0.5 + 0.5 x frac(k x 0.618...)`` for k = 1, 2,
    ... Netflix draws it from ``ThreadLocalRandom``; the golden-ratio sequence spreads
    as evenly and repeats exactly (the core draws no random numbers)."""

    __slots__ = ("_k",)

    def __init__(self) -> None:
        self._k = 0

    def __call__(self) -> float:
        self._k += 1
        return 0.5 + 0.5 * ((self._k * _GOLDEN) % 1.0)

_OK: Final = SampleKind.OK
_ERROR: Final = SampleKind.ERROR


def _log10_root(limit: int) -> int:
    """Netflix's ``Log10RootFunction``: ``max(1, int(log10(limit)))`` below 1,000, the
    square root's integer part above."""
    if limit < 1000:
        return max(1, int(math.log10(limit))) if limit > 0 else 1
    return int(math.sqrt(limit))


# ---------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class AdaptiveConfig:
    """An adaptive limit's settings (each defined once in
    :data:`~sluicegate.core.settings.SETTINGS`).

    Parameters:
        algorithm: ``"aimd"``, ``"gradient2"`` or ``"vegas"`` (default ``"vegas"``).
        minimum: the limit never goes below it (default 1).
        maximum: the limit never goes above it (default 1,000).
        initial: the limit at the start; ``None``: the algorithm's default (AIMD 10,
            Gradient2 20, Vegas 20), clamped.
        utilization: a sample grows the limit only when its invocation's in-flight count
            reached this share of the limit (default 0.9; Netflix's rule is 0.5).
        decay_time: while the limit is not used it decays toward ``in_flight /
            utilization`` with this time constant (default 10 s; 0 holds it, as Netflix).
        drop_on_error: count function errors as drops (default: ignored).
        window: seconds of samples per update (default 1, as Netflix's
            ``WindowedLimit``); 0: every sample updates.
        window_size: samples a window needs to update the limit (default 10).
        backoff_ratio: AIMD's factor on a drop, 0.5-0.999 (default 0.9).
        drop_latency: AIMD's timeout: a latency above it is a drop (default 5 s).
        smoothing: weight of a new estimate, 0-1; ``None``: Gradient2 0.2, Vegas 1.0.
        queue_size: Gradient2's headroom (default 4).
        long_window: Gradient2's long-term average, in samples (default 600).
        alpha, beta: Vegas's queue thresholds; ``None``: 3 and 6 x log10(limit).
        probe_multiplier: Vegas probes its no-load latency every ~multiplier x limit
            samples (default 30).

    Raises:
        ConfigError: a value out of range, or ``minimum`` above ``maximum``.
    """

    algorithm: AlgorithmName = SETTINGS["algorithm"].default
    minimum: int = SETTINGS["minimum"].default
    maximum: int = SETTINGS["maximum"].default
    initial: int | None = SETTINGS["initial"].default
    utilization: float = SETTINGS["utilization"].default
    decay_time: float = SETTINGS["decay_time"].default
    drop_on_error: bool = SETTINGS["drop_on_error"].default
    window: float = SETTINGS["window"].default
    window_size: int = SETTINGS["window_size"].default
    backoff_ratio: float = SETTINGS["backoff_ratio"].default
    drop_latency: float = SETTINGS["drop_latency"].default
    smoothing: float | None = SETTINGS["smoothing"].default
    queue_size: int = SETTINGS["queue_size"].default
    long_window: int = SETTINGS["long_window"].default
    alpha: int | None = SETTINGS["alpha"].default
    beta: int | None = SETTINGS["beta"].default
    probe_multiplier: int = SETTINGS["probe_multiplier"].default

    def __post_init__(self) -> None:
        ctx = "adaptive limit"
        for f in fields(self):
            value = SETTINGS[f.name].check(getattr(self, f.name), ctx)
            object.__setattr__(self, f.name, value)
        if self.minimum > self.maximum:
            raise ConfigError("minimum", self.minimum, f"<= maximum ({self.maximum})", ctx)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], context: str = "adaptive limit"
                     ) -> AdaptiveConfig:
        """An :class:`AdaptiveConfig` from a dict of its parameters (an App's
        ``adaptive={...}``, a scenario's ``[mapping.adaptive]``).

        Raises:
            ConfigError: an unknown parameter or a value out of range.
        """
        names = {f.name for f in fields(cls)}
        for key in values:
            if key not in names:
                raise ConfigError(str(key), values[key],
                                  "a parameter of the adaptive limit: " + ", ".join(sorted(names)),
                                  context)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every parameter by name (JSON-able)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def initial_limit(self) -> int:
        """The limit at the start: ``initial`` or the algorithm's default, clamped."""
        initial = self.initial
        if initial is None:
            initial = {"aimd": AIMD_INITIAL, "gradient2": GRADIENT2_INITIAL}.get(
                self.algorithm, VEGAS_INITIAL)
        return min(self.maximum, max(self.minimum, initial))


# ---------------------------------------------------------------------- the algorithms


class Algorithm:
    """An update rule: from one (possibly windowed) sample to a new estimate.

    Attributes:
        estimate: the current estimate (a float; the limit is its integer part, clamped
            by :class:`AdaptiveLimit`).
        processes: how many processes run this limit's mapping against the same
            downstream, each with its own limit (1 without a cluster): every *increase*
            of the rule is divided by it, so that together they grow as one limit would
            (see the module docstring); decreases are each process's own.
    """

    __slots__ = ("estimate", "maximum", "minimum", "processes")

    name: str = ""

    def __init__(self, config: AdaptiveConfig) -> None:
        self.estimate = float(config.initial_limit)
        self.minimum = config.minimum
        self.maximum = config.maximum
        self.processes = 1

    def update(self, latency: float, in_flight: int, drop: bool, grow: bool) -> None:
        """One sample: its ``latency`` (seconds; meaningless when ``drop`` and no latency
        was measured: then ``nan``), the in-flight count it saw, whether it dropped, and
        whether it may grow the limit (``in_flight`` reached the utilization)."""
        raise NotImplementedError

    def _clamp(self, value: float) -> float:
        return min(float(self.maximum), max(float(self.minimum), value))

    def describe(self) -> dict[str, float]:
        """The rule's internal statistics (latencies in seconds)."""
        return {}


class Aimd(Algorithm):
    """Additive increase, multiplicative decrease (``AIMDLimit``).

    Rule: on a drop, or a latency above ``drop_latency``, ``estimate = max(1, min(estimate
    - 1 / processes, estimate x backoff_ratio))``; else, while the limit is used,
    ``estimate + 1 / processes``. In one process with a whole estimate that is Netflix's
    ``max(1, min(limit - 1, int(limit x backoff_ratio)))`` and ``limit + 1``; the
    estimate keeps its fraction, so that processes sharing growth add up (two reach the
    next integer every second update) and a decrease stays multiplicative on a small
    limit (``int(5 x 0.75)`` would cut 5 by 40%).
    """

    __slots__ = ("backoff_ratio", "drop_latency")

    name = "aimd"

    def __init__(self, config: AdaptiveConfig) -> None:
        super().__init__(config)
        self.backoff_ratio = config.backoff_ratio
        self.drop_latency = config.drop_latency

    def update(self, latency: float, in_flight: int, drop: bool, grow: bool) -> None:
        if drop or latency > self.drop_latency:
            estimate = self.estimate
            step = 1.0 / self.processes
            self.estimate = self._clamp(max(1.0, min(estimate - step,
                                                     estimate * self.backoff_ratio)))
        elif grow:
            self.estimate = self._clamp(self.estimate + 1.0 / self.processes)


class Gradient2(Algorithm):
    """The gradient of a long-term average latency over the current one
    (``Gradient2Limit``).

    Rule, per sample: ``short`` = the sample's latency; ``long`` = an exponential average
    over ``long_window`` samples (a plain mean over the first 10); when ``long / short
    > 2``, ``long`` is cut by 10% (latency back to normal after a long overload). While
    the limit is used: ``gradient = max(0.5, min(1, long / short))``, ``new = limit x
    gradient + queue_size / processes``, ``limit = limit x (1 - smoothing) + new x
    smoothing`` (the processes sharing a downstream keep ``queue_size`` of headroom
    together).
    Gradient2 does not read drops (Netflix's rule does not): a dropped sample without a
    latency is skipped.
    """

    __slots__ = ("_count", "_factor", "_sum", "long", "queue_size", "short", "smoothing")

    name = "gradient2"

    def __init__(self, config: AdaptiveConfig) -> None:
        super().__init__(config)
        self.queue_size = config.queue_size
        self.smoothing = (GRADIENT2_SMOOTHING if config.smoothing is None
                          else config.smoothing)
        self._factor = 2.0 / (config.long_window + 1)
        self._count = 0
        self._sum = 0.0
        self.long = 0.0
        self.short = 0.0

    def update(self, latency: float, in_flight: int, drop: bool, grow: bool) -> None:
        if math.isnan(latency):
            return
        short = latency
        if self._count < GRADIENT2_WARMUP:
            self._count += 1
            self._sum += short
            long = self._sum / self._count
        else:
            long = self.long * (1.0 - self._factor) + short * self._factor
        self.short = short
        if short > 0 and long / short > 2:
            long *= 0.9
        self.long = long
        if not grow:
            return
        gradient = 1.0 if short <= 0 else max(0.5, min(1.0, long / short))
        limit = self.estimate
        new = limit * gradient + self.queue_size / self.processes
        new = limit * (1.0 - self.smoothing) + new * self.smoothing
        self.estimate = self._clamp(new)

    def describe(self) -> dict[str, float]:
        return {"long_latency": self.long, "short_latency": self.short}


class Vegas(Algorithm):
    """TCP Vegas's queue estimate (``VegasLimit``).

    Rule, per sample: every ``probe_multiplier x limit x jitter`` samples (jitter in
    [0.5, 1), :class:`GoldenJitter`) the no-load latency is reset to the sample's; a latency below the
    no-load latency becomes it. Otherwise ``queue = ceil(limit x (1 - no_load /
    latency))``, and with ``L = log10root(limit)``: a drop gives ``limit - L``; while
    the limit is used, ``queue <= L`` gives ``limit + beta / processes``, ``queue <
    alpha`` gives ``limit + L / processes``, ``queue > beta`` gives ``limit - L``, else
    no change (``alpha`` = 3L and ``beta`` = 6L unless set). The result is clamped and
    smoothed.
    """

    __slots__ = ("_alpha", "_beta", "_draw", "_jitter", "_probe_count", "no_load",
                 "probe_multiplier", "queue", "smoothing")

    name = "vegas"

    def __init__(self, config: AdaptiveConfig,
                 jitter: Callable[[], float] | None = None) -> None:
        super().__init__(config)
        self._alpha = config.alpha
        self._beta = config.beta
        self.smoothing = VEGAS_SMOOTHING if config.smoothing is None else config.smoothing
        self.probe_multiplier = config.probe_multiplier
        self._draw = jitter if jitter is not None else GoldenJitter()
        self._jitter = self._draw()
        self._probe_count = 0
        self.no_load = 0.0
        self.queue = 0

    def update(self, latency: float, in_flight: int, drop: bool, grow: bool) -> None:
        if math.isnan(latency):
            if drop:  # a drop without a latency: the drop rule alone
                self._set(self.estimate - _log10_root(int(self.estimate)))
            return
        self._probe_count += 1
        if self._jitter * self.probe_multiplier * self.estimate <= self._probe_count:
            self._jitter = self._draw()
            self._probe_count = 0
            self.no_load = latency
            return
        if self.no_load <= 0 or latency < self.no_load:
            self.no_load = latency
            return
        limit = self.estimate
        whole = int(limit)
        self.queue = queue = math.ceil(limit * (1.0 - self.no_load / latency))
        step = _log10_root(whole)
        if drop:
            new = limit - step
        elif not grow:
            return
        else:
            alpha = 3 * step if self._alpha is None else self._alpha
            beta = 6 * step if self._beta is None else self._beta
            if queue <= step:
                new = limit + beta / self.processes
            elif queue < alpha:
                new = limit + step / self.processes
            elif queue > beta:
                new = limit - step
            else:
                return
        self._set(new)

    def _set(self, new: float) -> None:
        new = max(1.0, new)
        new = self._clamp(new)
        self.estimate = self._clamp((1.0 - self.smoothing) * self.estimate
                                    + self.smoothing * new)

    def describe(self) -> dict[str, float]:
        return {"no_load_latency": self.no_load, "queue": float(self.queue)}


def make_algorithm(config: AdaptiveConfig,
                   jitter: Callable[[], float] | None = None) -> Algorithm:
    """The update rule ``config.algorithm`` names (``jitter``: Vegas's probe jitter, a
    callable returning numbers in [0.5, 1); default :class:`GoldenJitter`)."""
    if config.algorithm == "aimd":
        return Aimd(config)
    if config.algorithm == "gradient2":
        return Gradient2(config)
    return Vegas(config, jitter)


# ---------------------------------------------------------------------- the term


@dataclass(frozen=True, slots=True)
class AdaptiveStatistics:
    """A snapshot of an adaptive limit, for status displays and metrics.

    Attributes:
        algorithm: the rule's name.
        limit: the term's value.
        estimate: the rule's estimate before it is made an integer.
        samples: samples observed; ``drops``: of them, drops; ``ignored``: function
            errors ignored; ``updates``: times the rule ran.
        latency: the latest sample's latency in seconds (``None`` before any).
        detail: the rule's own statistics (latency averages, queue estimate).
        processes: the processes its increases are shared with (1: this one alone).
    """

    algorithm: str
    limit: int
    estimate: float
    samples: int
    drops: int
    ignored: int
    updates: int
    latency: float | None
    detail: Mapping[str, float]
    processes: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "limit": self.limit, "estimate": self.estimate,
                "samples": self.samples, "drops": self.drops, "ignored": self.ignored,
                "updates": self.updates, "latency": self.latency, "detail": dict(self.detail),
                "processes": self.processes}


class AdaptiveLimit:
    """A limit term (``"adaptive"``) that observes samples; see the module docstring.

    Parameters:
        config: the settings.
        jitter: Vegas's probe jitter (default :class:`GoldenJitter`).
        name: the term's name.
    """

    __slots__ = ("_decay", "_drop_on_error", "_last", "_limit", "_rank", "_utilization",
                 "_w_count", "_w_drop", "_w_end", "_w_flight", "_w_latency", "_w_min", "_window",
                 "_window_size", "algorithm", "config", "drops", "ignored", "latency", "name",
                 "samples", "updates")

    def __init__(self, config: AdaptiveConfig | None = None, *,
                 jitter: Callable[[], float] | None = None,
                 name: str = TERM_ADAPTIVE) -> None:
        self.config = config = config if config is not None else AdaptiveConfig()
        self.name = name
        self.algorithm = make_algorithm(config, jitter)
        self._rank = 0
        self._limit = int(self.algorithm.estimate)
        self._utilization = config.utilization
        self._decay = config.decay_time
        self._last = 0.0
        self._drop_on_error = config.drop_on_error
        self._window = config.window
        self._window_size = config.window_size
        self._w_end = -math.inf
        self._w_count = 0
        self._w_latency = 0.0
        self._w_min = math.inf
        self._w_flight = 0
        self._w_drop = False
        self.samples = 0
        self.drops = 0
        self.ignored = 0
        self.updates = 0
        self.latency: float | None = None

    def __repr__(self) -> str:
        return f"AdaptiveLimit({self.algorithm.name}, limit={self._limit})"

    # ------------------------------------------------------------------ term

    def value(self, now: float) -> int:
        """The current limit (the estimate's integer part, within the clamp)."""
        return self._limit

    def next_change(self, now: float) -> float | None:
        """``None``: the limit changes only when a sample arrives."""
        return None

    def observe(self, now: float, sample: Sample) -> None:
        """Take one sample (see the module docstring for what counts as a drop)."""
        self.samples += 1
        kind = sample.kind
        overload = sample.overload
        if kind is _ERROR and not overload and not self._drop_on_error:
            self.ignored += 1
            return
        drop = kind is not _OK or overload
        latency = sample.latency
        if latency is None:
            # an invocation's own duration; a throttle or a timeout has no latency
            latency = sample.end - sample.start if kind is _OK else math.nan
        if drop:
            self.drops += 1
        if not math.isnan(latency):
            self.latency = latency
        if self._window > 0:
            self._windowed(now, latency, sample.in_flight, drop)
            return
        self._update(now, latency, sample.in_flight, drop)

    def statistics(self) -> AdaptiveStatistics:
        """A snapshot (see :class:`AdaptiveStatistics`)."""
        algorithm = self.algorithm
        return AdaptiveStatistics(algorithm.name, self._limit, algorithm.estimate,
                                  self.samples, self.drops, self.ignored, self.updates,
                                  self.latency, algorithm.describe(), algorithm.processes)

    @property
    def processes(self) -> int:
        """The processes running this mapping with a limit of their own against the same
        downstream, this one included (1 without a cluster): the rule's increases are
        divided by it (see the module docstring)."""
        return self.algorithm.processes

    @property
    def rank(self) -> int:
        """This process's place among :attr:`processes`, 0 to ``processes - 1``."""
        return self._rank

    def share_with(self, processes: int, rank: int = 0) -> None:
        """Share the limit's growth with ``processes`` processes (this one included; below
        1 counts as 1), this one being number ``rank`` among them (0 to ``processes -
        1``, distinct per process). The cluster's coordinator calls it at every round
        with the live holders of the mapping's lease, so a process that dies gives the
        survivors their full increase back once its lease expires."""
        processes = max(1, int(processes))
        self.algorithm.processes = processes
        self._rank = min(max(0, int(rank)), processes - 1)
        self._limit = self._whole()

    def _whole(self) -> int:
        """The limit: the estimate plus this process's offset ``rank / processes``,
        rounded down, within the clamp. The offsets spread the processes' integer steps
        over the estimate's unit (N equal estimates e give ``floor(N x e)`` together:
        Hermite's identity), so N processes grown in step still add one slot at a time
        rather than N at every N-th update."""
        algorithm = self.algorithm
        value = int(algorithm.estimate + self._rank / algorithm.processes)
        return min(algorithm.maximum, max(algorithm.minimum, value))

    # ------------------------------------------------------------------ internals

    def _update(self, now: float, latency: float, in_flight: int, drop: bool) -> None:
        algorithm = self.algorithm
        # "used": utilization of the estimate, or the whole limit in force (the
        # estimate's integer part, all the in-flight count can reach). Without the
        # second, a decayed estimate in (n / utilization, n + 1), n < 9, held the limit
        # at n for good: n in flight never reaches utilization x estimate, and the
        # decay's floor, n / utilization, is below the estimate
        grow = (in_flight >= self._utilization * algorithm.estimate
                or in_flight >= self._limit)
        algorithm.update(latency, in_flight, drop, grow)
        elapsed = now - self._last
        self._last = now
        if not grow and not drop and self._decay and elapsed > 0:
            floor = in_flight / self._utilization
            estimate = algorithm.estimate
            if estimate > floor:
                share = 1.0 - math.exp(-elapsed / self._decay)
                algorithm.estimate = max(float(algorithm.minimum),
                                         estimate - (estimate - floor) * share)
        self.updates += 1
        self._limit = self._whole()

    def _windowed(self, now: float, latency: float, in_flight: int, drop: bool) -> None:
        """``WindowedLimit``: gather; when a sample ends after the window's end and the
        window holds ``window_size`` samples, close it (the next ends ``clamp(2 x its
        smallest latency, window, window)`` later, that is ``window``) and run the rule
        with its average latency, largest in-flight count and drop. A window short of
        samples goes on (Netflix drops it), unless it saw a drop: then the drop rule
        runs and the window closes."""
        if not math.isnan(latency):
            self._w_count += 1
            self._w_latency += latency
            self._w_min = min(self._w_min, latency)
        self._w_flight = max(self._w_flight, in_flight)
        self._w_drop = self._w_drop or drop
        if now <= self._w_end:
            return
        if self._w_count >= self._window_size:
            self._update(now, self._w_latency / self._w_count, self._w_flight, self._w_drop)
        elif self._w_drop and self._w_end > -math.inf:
            self._update(now, math.nan, self._w_flight, True)
        elif self._w_end > -math.inf:
            # too few samples: the window goes on until it holds window_size. Closed
            # and dropped here (Netflix's rule), a window shorter than window_size
            # invocations of the limit (window x limit / latency < window_size) never
            # updated it: it could only fall, by the drop rule (a live limit of 3 with
            # 250 ms calls and 0.25 s windows got 3 samples a window, held at 3)
            return
        self._w_end = now + self._window
        self._w_count = 0
        self._w_latency = 0.0
        self._w_min = math.inf
        self._w_flight = 0
        self._w_drop = False
