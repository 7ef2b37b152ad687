"""The simulator's models: duration draws, execution environments, the downstream, arrivals.

Every model draws from a ``random.Random`` it is given (the driver seeds one stream per
purpose), never from the ``random`` module, and reads time only from its arguments, so a
run is a pure function of its scenario.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

from sluicegate.core.types import Receive
from sluicegate.sim.scenario import (
    DOWNSTREAM_RATE_WINDOW,
    Distribution,
    DownstreamSpec,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    Normal,
    ProducerSpec,
    Uniform,
)

__all__ = [
    "Arrivals",
    "Downstream",
    "Environments",
    "ErrorWindows",
    "LongPolls",
    "lognormal_block",
    "pop_event",
    "push_event",
    "sampler",
    "schedule_buckets",
    "schedule_controls",
    "schedule_windows",
]

WAIT_COMPACT_SLACK: Final = 256
""":class:`LongPolls` rebuilds its deadline deque once it holds more than twice the
waiting receives plus this many entries (most of them served already)."""


LOGNORMAL_BLOCK: Final = 256
"""Pairs of normals :func:`lognormal_block` draws at a time for the simulator."""

_TWOPI: Final = 2.0 * math.pi


_COMPILED: Final = __file__.endswith((".so", ".pyd"))
"""Whether this module runs compiled (setup.py): its math calls are then native."""


def _lognormal_pairs(mu: float, sigma: float, rng: random.Random, pairs: int) -> list[float]:
    # random.gauss's Box-Muller step, two normals per pair, cosine one first; each normal
    # z is then used as gauss(0.0, 1.0) returns it (0.0 + z * 1.0)
    if _COMPILED:
        return _lognormal_pairs_native(mu, sigma, rng, pairs)
    rand, log, sqrt, cos, sin, exp = rng.random, math.log, math.sqrt, math.cos, math.sin, math.exp
    out: list[float] = []
    append = out.append
    for _ in range(pairs):
        x2pi = rand() * _TWOPI
        g2rad = sqrt(-2.0 * log(1.0 - rand()))
        append(exp(mu + sigma * (0.0 + cos(x2pi) * g2rad * 1.0)))
        append(exp(mu + sigma * (0.0 + sin(x2pi) * g2rad * 1.0)))
    return out


def _lognormal_pairs_native(mu: float, sigma: float, rng: random.Random, pairs: int
                            ) -> list[float]:
    """:func:`_lognormal_pairs` for the compiled build, the same draws: there ``math.log``
    and its kin called by name are C calls, where the pure version's local names for them
    are generic calls (and the pure version's locals are what is fast in Python)."""
    rand = rng.random
    out: list[float] = []
    for _ in range(pairs):
        x2pi = rand() * _TWOPI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - rand()))
        out.append(math.exp(mu + sigma * (0.0 + math.cos(x2pi) * g2rad * 1.0)))
        out.append(math.exp(mu + sigma * (0.0 + math.sin(x2pi) * g2rad * 1.0)))
    return out


def _pairs_match_gauss() -> bool:
    """Whether :func:`_lognormal_pairs` draws what ``random.gauss`` does on this Python
    (its algorithm is CPython's, not a documented promise)."""
    mu, sigma = -3.0, 0.2
    ours = _lognormal_pairs(mu, sigma, random.Random("sluicegate-gauss-check"), 8)
    rng = random.Random("sluicegate-gauss-check")
    theirs = [math.exp(mu + sigma * rng.gauss(0.0, 1.0)) for _ in range(16)]
    return ours == theirs


_PAIRS_MATCH = _pairs_match_gauss()


def lognormal_block(
    mu: float, sigma: float, rng: random.Random, pairs: int = LOGNORMAL_BLOCK
) -> list[float]:
    """The next ``2 * pairs`` draws of ``exp(mu + sigma * rng.gauss(0.0, 1.0))``, in order.

    The same values, drawn from ``rng`` in the same order, as that many calls, without a
    call per draw: for the simulator, which draws one duration per invocation. ``rng``
    must be used for nothing else while its blocks are being consumed (a block draws
    ahead). Where this Python's ``gauss`` draws otherwise, the block is made of calls to
    it.
    """
    if _PAIRS_MATCH and getattr(rng, "gauss_next", None) is None:
        return _lognormal_pairs(mu, sigma, rng, pairs)
    gauss, exp = rng.gauss, math.exp
    return [exp(mu + sigma * gauss(0.0, 1.0)) for _ in range(2 * pairs)]


def sampler(dist: Distribution, rng: random.Random) -> Callable[[], float]:
    """A function drawing one value (seconds) from ``dist`` with ``rng`` per call.

    Parameters:
        dist: the distribution.
        rng: the generator to draw from.

    Returns:
        A zero-argument callable returning seconds >= 0. For :class:`Fixed` it draws
        nothing (the generator is left untouched).
    """
    if isinstance(dist, Fixed):
        value = dist.value
        return lambda: value
    if isinstance(dist, Uniform):
        return partial(rng.uniform, dist.min, dist.max)
    if isinstance(dist, LogNormal):
        if dist.p99 == dist.median:
            median = dist.median
            return lambda: median
        # exp(mu + sigma * N(0, 1)), with random.gauss: the same law as
        # rng.lognormvariate, at half its cost (gauss draws normals in pairs).
        mu, sigma, gauss, exp = dist.mu, dist.sigma, rng.gauss, math.exp
        return lambda: exp(mu + sigma * gauss(0.0, 1.0))
    if isinstance(dist, Normal):
        gauss = rng.gauss
        mean, stddev = dist.mean, dist.stddev

        def normal() -> float:
            x = gauss(mean, stddev)
            return x if x > 0.0 else 0.0

        return normal
    if isinstance(dist, Exponential):
        return partial(rng.expovariate, 1.0 / dist.mean)
    if isinstance(dist, Empirical):
        samples = dist.samples
        if len(samples) == 1:
            only = samples[0]
            return lambda: only
        return partial(rng.choice, samples)
    raise TypeError(f"not a distribution: {dist!r}")


class Environments:
    """A function's execution environments: busy ones, and warm idle ones to reuse.

    An invocation takes the most recently freed idle environment (so surplus ones stay
    idle and age out), or starts a new one, paying a cold start. An environment idle for
    ``idle_timeout`` seconds is reclaimed. Idle environments are kept as their release
    times in a list: taking and freeing at its end keeps it sorted, so reclaiming drops a
    prefix (one slice deletion for all of them), and nothing is stored per environment.
    A list rather than a deque: the compiled build reads, appends and pops a list
    natively.

    Parameters:
        idle_timeout: seconds an idle environment stays warm.

    Attributes:
        live: environments that exist now (busy, initialising or idle): what AWS's
            ConcurrentExecutions approximates once they are all in use.
        cold_starts: environments started so far.
    """

    __slots__ = ("_idle", "cold_starts", "idle_timeout", "live", "release", "warm")

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self._idle: list[float] = []
        self.live = 0
        self.cold_starts = 0
        self.release: Callable[[float], None] = self._idle.append
        """``release(now)``: an invocation ended at ``now``, its environment becomes idle
        (the idle list's own ``append``: one C call on the simulator's hot path)."""
        self.warm: list[float] = self._idle
        """The idle environments' release times, oldest first; read-only. A driver may
        take the newest itself (``warm.pop()``) when the oldest is still warm at ``now``
        (``warm[0] > now - idle_timeout``): that is what :meth:`acquire` would do."""

    @property
    def idle(self) -> int:
        """Warm environments waiting for an invocation."""
        return len(self._idle)

    def reclaim(self, now: float) -> None:
        """Drop environments idle since ``now - idle_timeout`` or earlier."""
        idle = self._idle
        cutoff = now - self.idle_timeout
        gone = 0
        while gone < len(idle) and idle[gone] <= cutoff:
            gone += 1
        if gone:
            del idle[:gone]
            self.live -= gone

    def acquire(self, now: float) -> bool:
        """Take an environment for an invocation starting at ``now``.

        Returns:
            ``True`` for a cold start (a new environment), ``False`` for a warm one.
        """
        idle = self._idle
        if idle:
            if idle[0] <= now - self.idle_timeout:
                self.reclaim(now)
            if idle:
                idle.pop()
                return False
        self.live += 1
        self.cold_starts += 1
        return True


class Downstream:
    """A shared dependency with a capacity; see :class:`~sluicegate.sim.scenario.DownstreamSpec`.

    Load is measured when a request starts, that request included: concurrent requests
    over ``concurrency``, or the request rate (an exponentially weighted average with a
    time constant of :data:`~sluicegate.sim.scenario.DOWNSTREAM_RATE_WINDOW` seconds)
    over ``rate``. A request then takes ``latency x max(1, load) ** latency_exponent`` and
    fails with probability ``min(1, overload_errors x max(0, load - 1))``.

    Parameters:
        spec: the downstream's parameters.
        rng: the generator for latency and error draws.

    Attributes:
        active: requests in progress (invocations calling it, in ``concurrency`` mode).
        requests: requests made so far.
        failures: requests that failed so far.
        peak: the most requests in progress at once (``concurrency`` mode).

    In ``concurrency`` mode it also keeps how long ``active`` stayed at each level
    (:meth:`concurrency_figures`): how often an adaptive limit kept it near capacity.
    """

    __slots__ = ("_at", "_latency", "_rate", "_rate_at", "_rng", "_time_at", "active",
                 "failures", "peak", "requests", "spec")

    def __init__(self, spec: DownstreamSpec, rng: random.Random) -> None:
        self.spec = spec
        self._rng = rng
        self._latency = sampler(spec.latency, rng)
        self._rate = 0.0
        self._rate_at = 0.0
        self.active = 0
        self.requests = 0
        self.failures = 0
        self.peak = 0
        self._at = 0.0
        self._time_at: dict[int, float] = {}

    def _move(self, now: float, step: int) -> None:
        """``active`` changes by ``step`` at ``now``: the time at the old level is kept."""
        active = self.active
        if now > self._at:
            self._time_at[active] = self._time_at.get(active, 0.0) + (now - self._at)
            self._at = now
        active += step
        self.active = active
        self.peak = max(self.peak, active)

    def concurrency_figures(self, end: float) -> dict[str, float]:
        """Requests in progress over ``[0, end]``, time-weighted (``concurrency`` mode):
        ``capacity``, ``peak``, ``mean``, and ``over_capacity`` / ``over_1.1_capacity``,
        the shares of the time above ``concurrency`` and above 1.1 x it."""
        spec = self.spec
        capacity = spec.concurrency or 0
        time_at = dict(self._time_at)
        if end > self._at:
            time_at[self.active] = time_at.get(self.active, 0.0) + (end - self._at)
        total = sum(time_at.values()) or 1.0
        return {
            "capacity": capacity,
            "peak": self.peak,
            "mean": round(sum(k * v for k, v in time_at.items()) / total, 6),
            "over_capacity": round(sum(v for k, v in time_at.items() if k > capacity)
                                   / total, 6),
            "over_1.1_capacity": round(sum(v for k, v in time_at.items()
                                           if k > 1.1 * capacity) / total, 6),
        }

    def load(self, now: float, requests: int) -> float:
        """The load seen by ``requests`` requests starting at ``now`` (1.0 = at capacity);
        counts them in."""
        spec = self.spec
        self.requests += requests
        if spec.concurrency is not None:
            self._move(now, 1)
            return self.active / spec.concurrency
        assert spec.rate is not None
        elapsed = now - self._rate_at
        rate = self._rate
        if elapsed > 0:
            rate *= math.exp(-elapsed / DOWNSTREAM_RATE_WINDOW)
        rate += requests / DOWNSTREAM_RATE_WINDOW
        self._rate = rate
        self._rate_at = now
        return rate / spec.rate

    def call(self, now: float, requests: int) -> tuple[float, int]:
        """``requests`` requests made one after the other from ``now``.

        Returns:
            Their total latency in seconds and how many failed.
        """
        load = self.load(now, requests)
        spec = self.spec
        factor = load ** spec.latency_exponent if load > 1.0 else 1.0
        p_fail = min(1.0, spec.overload_errors * (load - 1.0)) if load > 1.0 else 0.0
        draw = self._latency
        rand = self._rng.random
        latency = 0.0
        failed = 0
        for _ in range(requests):
            latency += draw() * factor
            if p_fail and rand() < p_fail:
                failed += 1
        self.failures += failed
        return latency, failed

    def done(self, now: float) -> None:
        """An invocation that called it ended at ``now`` (frees a ``concurrency`` slot)."""
        if self.spec.concurrency is not None:
            self._move(now, -1)


class Arrivals:
    """When a producer sends, and how many messages each time.

    - ``constant``: send k at ``start + k x batch / rate`` (computed, not accumulated, so
      no drift over long runs), ``batch`` messages each;
    - ``poisson``: exponential gaps with mean ``batch / rate``, ``batch`` messages each;
    - ``burst``: ``size`` messages at ``start + k x interval``.

    Nothing is sent at or after ``stop`` (or the run's end), except that ``stop == start``
    with a burst sends exactly one burst.

    Parameters:
        spec: the producer.
        end: the run's end in seconds (used when ``spec.stop`` is ``None``).
        rng: the generator for poisson gaps.
    """

    __slots__ = ("_end", "_rng", "batch", "constant", "count", "k", "rate", "spec", "start",
                 "stop")

    def __init__(self, spec: ProducerSpec, end: float, rng: random.Random) -> None:
        self.spec = spec
        self._end = end
        self.stop = end if spec.stop is None else min(spec.stop, end)
        self._rng = rng
        self.k = 0
        """Sends made after the first (the ``k`` of the next send's time)."""
        self.count = spec.size if spec.kind == "burst" else spec.batch
        # a constant producer's terms, read once per send (the simulator's busiest call;
        # its event loop computes a constant producer's next send from them itself, as
        # next() does)
        self.constant = spec.kind == "constant"
        self.start = spec.start
        self.batch = spec.batch
        self.rate = spec.rate

    def first(self) -> float | None:
        """The time of the first send, or ``None`` when it sends nothing."""
        spec = self.spec
        if spec.kind == "burst" and spec.stop == spec.start:
            return spec.start if spec.start < self._end else None
        if spec.kind == "poisson":
            first = spec.start + self._rng.expovariate(spec.rate / spec.batch)
            return first if first < self.stop else None
        return spec.start if spec.start < self.stop else None

    def next(self, now: float) -> float | None:
        """The time of the send after the one at ``now``, or ``None`` when done."""
        k = self.k = self.k + 1
        if self.constant:
            when = self.start + k * self.batch / self.rate
            return when if when < self.stop else None
        spec = self.spec
        if spec.kind == "poisson":
            when = now + self._rng.expovariate(spec.rate / spec.batch)
        else:
            if spec.interval <= 0:
                return None
            when = spec.start + self.k * spec.interval
        return when if when < self.stop else None


class LongPolls:
    """Receives of one queue waiting for messages: SQS long polls.

    A message that becomes visible goes to a waiting receive drawn at random. SQS does not
    say which of several concurrent long polls gets a new message; its queues are spread
    over many servers and a receive is answered by whichever server it reaches, so no
    order is promised. Serving in arrival order instead would starve no one and let a
    poller wait up to (waiting receives / arrival rate) seconds: with more pollers than
    20 s of arrivals none would ever come back empty, which is the scaling signal of the
    ``aws`` policy. At random, a receive waiting among N comes back empty from its 20 s
    wait with probability ``(1 - 1/N) ** (20 x rate)``, about ``exp(-20 x rate / N)``.

    Entries are ``[deadline, sequence, receive, position]`` lists; ``position`` is the
    entry's index in the pool of waiting receives, or -1 once it left (served, expired or
    cut). Deadlines are kept in a deque while they arrive in order (the 20 s long polls)
    and in a heap otherwise (the shorter waits of batching windows); entries that left are
    dropped when they reach the front, and the deque is rebuilt without them once they
    outnumber the waiting entries by :data:`WAIT_COMPACT_SLACK`, so memory is bounded by
    the receives waiting, not by those issued over one wait (a busy queue serves its
    long polls within milliseconds: 20 s of them would otherwise pile up, and be
    dropped in one burst at the next expiry).

    Parameters:
        rng: the generator that picks which receive gets a message.

    Attributes:
        pool: the waiting entries, in no order; read-only (truthy while any receive
            waits, which a driver tests without a call).
    """

    __slots__ = ("_heap", "ordered", "pool", "random", "seq")

    def __init__(self, rng: random.Random) -> None:
        self.pool: list[list[Any]] = []
        self.ordered: deque[list[Any]] = deque()
        """The entries whose deadlines arrived in order (stale ones too); a driver
        inlining :meth:`add` appends to it as :meth:`add` does."""
        self._heap: list[list[Any]] = []
        self.random: Callable[[], float] = rng.random
        """The draw :meth:`take` picks with (a driver inlining :meth:`take` on its hot path
        draws with it the same way)."""
        self.seq = 0
        """The last entry's sequence number."""

    def __len__(self) -> int:
        """Receives waiting."""
        return len(self.pool)

    def add(self, deadline: float, receive: Receive) -> None:
        """``receive`` waits for messages until ``deadline`` (seconds)."""
        seq = self.seq = self.seq + 1
        pool = self.pool
        entry = [deadline, seq, receive, len(pool)]
        pool.append(entry)
        ordered = self.ordered
        if not ordered or ordered[-1][0] <= deadline:
            ordered.append(entry)
            if len(ordered) > 2 * len(pool) + WAIT_COMPACT_SLACK:
                self.compact()
        else:
            heapq.heappush(self._heap, entry)

    def compact(self) -> None:
        """Drop the entries that left from :attr:`ordered` (once they outnumber the
        waiting ones by :data:`WAIT_COMPACT_SLACK`)."""
        self.ordered = deque([e for e in self.ordered if e[3] >= 0])

    def take(self) -> list[Any]:
        """Remove a waiting entry drawn at random and return it (to serve its receive,
        ``entry[2]``; :meth:`put_back` if there was nothing for it after all).

        Raises:
            IndexError: nothing waits.
        """
        pool = self.pool
        index = int(self.random() * len(pool))
        entry = pool[index]
        last = pool.pop()
        if last is not entry:
            pool[index] = last
            last[3] = index
        entry[3] = -1
        return entry

    def put_back(self, entry: list[Any]) -> None:
        """Make an entry from :meth:`take` wait again, with its deadline."""
        entry[3] = len(self.pool)
        self.pool.append(entry)

    def remove(self, entry: list[Any]) -> None:
        """``entry`` stops waiting."""
        pool = self.pool
        index = entry[3]
        last = pool.pop()
        if last is not entry:
            pool[index] = last
            last[3] = index
        entry[3] = -1

    def expire(self, now: float) -> list[Receive]:
        """Remove and return the receives whose wait ran out at ``now``, earliest first."""
        out: list[Receive] = []
        for entry in self._due(now):
            self.remove(entry)
            out.append(entry[2])
        return out

    def _due(self, now: float) -> list[list[Any]]:
        due: list[list[Any]] = []
        ordered = self.ordered
        while ordered and (ordered[0][3] < 0 or ordered[0][0] <= now):
            entry = ordered.popleft()
            if entry[3] >= 0:
                due.append(entry)
        heap = self._heap
        while heap and (heap[0][3] < 0 or heap[0][0] <= now):
            entry = heapq.heappop(heap)
            if entry[3] >= 0:
                due.append(entry)
        due.sort()
        return due

    def next_deadline(self) -> float | None:
        """When the next wait runs out, or ``None`` when nothing waits."""
        ordered = self.ordered
        while ordered and ordered[0][3] < 0:
            ordered.popleft()
        heap = self._heap
        while heap and heap[0][3] < 0:
            heapq.heappop(heap)
        if ordered and heap:
            return float(min(ordered[0][0], heap[0][0]))
        if ordered:
            return float(ordered[0][0])
        if heap:
            return float(heap[0][0])
        return None

    def clear(self) -> list[Receive]:
        """Remove every waiting receive; return them in the order they started waiting."""
        pool = sorted(self.pool, key=lambda entry: entry[1])
        for entry in pool:
            entry[3] = -1
        self.pool.clear()
        self.ordered.clear()
        self._heap.clear()
        return [entry[2] for entry in pool]


class ErrorWindows:
    """The injected error probabilities of the windows open now (``[[function.errors]]``),
    shared by the queue and stream simulators. Overlapping windows of one kind combine as
    independent chances (``1 - prod(1 - rate)``); their ``raise_at`` points average,
    weighted by rate (``docs/scenarios.md``)."""

    __slots__ = ("open", "p_item", "p_raise", "p_timeout", "raise_at", "windows")

    def __init__(self, windows: Sequence[Any]) -> None:
        self.windows = windows
        self.open: list[int] = []
        self.p_raise = self.p_timeout = self.p_item = 0.0
        self.raise_at = 1.0

    def toggle(self, index: int, on: bool) -> None:
        if on:
            self.open.append(index)
        elif index in self.open:
            self.open.remove(index)
        keep = {"raise": 1.0, "timeout": 1.0, "batch_item_failure": 1.0}
        raise_at = weight = 0.0
        for i in self.open:
            w = self.windows[i]
            keep[w.kind] *= 1.0 - w.rate
            if w.kind == "raise":
                raise_at += w.raise_at * w.rate
                weight += w.rate
        self.p_raise = 1.0 - keep["raise"]
        self.p_timeout = 1.0 - keep["timeout"]
        self.p_item = 1.0 - keep["batch_item_failure"]
        self.raise_at = raise_at / weight if weight else 1.0


BUCKET_SEQ: Final = -(2**62)
"""Sequence numbers of bucket boundaries start here (they sort first at their instant)."""
CONTROL_SEQ: Final = -(2**61)
"""Sequence numbers of error windows and pauses start here (second at their instant)."""


def schedule_controls(
    heap: list[tuple[Any, ...]],
    *,
    end: float,
    bucket: float,
    windows: Sequence[Any],
    pauses: Sequence[Any],
    kinds: tuple[int, int, int, int],
) -> Callable[[], int]:
    """Push a run's scenario events on its event heap, as both simulators schedule them:
    bucket boundaries, then error windows opening and closing, then pauses and resumes.
    They carry negative sequence numbers, so at one instant they run first, in that
    order, before anything else, whenever it was scheduled.

    Parameters:
        heap: the event heap of ``(time, sequence, kind, ...)`` entries.
        end: the run's end; nothing at or after it is scheduled.
        bucket: seconds per series bucket.
        windows: the function's error windows (``start``, ``stop``).
        pauses: the mapping's pauses (``at``, ``until``).
        kinds: the simulator's event kinds for a bucket boundary, an error window
            (``index, on`` follow), a pause and a resume.

    Returns:
        The counter of control sequence numbers, for more events of that rank.
    """
    schedule_buckets(heap, end=end, bucket=bucket, kind=kinds[0])
    control = itertools.count(CONTROL_SEQ).__next__
    schedule_windows(heap, control, end=end, windows=windows, pauses=pauses,
                     kinds=(kinds[1], kinds[2], kinds[3]))
    return control


def push_event(heap: list[tuple[Any, ...]], event: tuple[Any, ...]) -> None:
    """``heapq.heappush(heap, event)`` for an event heap's ``(time, sequence, ...)``
    entries, for the compiled build: there it compares the entries' times as native
    floats (a tuple comparison otherwise, only when their times are equal), which is what
    the simulator's event loop spends much of its time on. Entries are ordered as tuples
    are, so a heap may be used through both this and :mod:`heapq`; a pure-Python build
    calls :mod:`heapq` instead (its C functions are faster than this, interpreted)."""
    pos = len(heap)
    heap.append(event)
    t: float = event[0]
    while pos > 0:
        up = (pos - 1) >> 1
        parent = heap[up]
        pt: float = parent[0]
        if t < pt or (t == pt and event < parent):
            heap[pos] = parent
            pos = up
        else:
            break
    heap[pos] = event


def pop_event(heap: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """``heapq.heappop(heap)`` for an event heap, for the compiled build (see
    :func:`push_event`), as :mod:`heapq` does it: the hole left at the top moves down to a
    leaf along the smaller children (the right one when they are equal), and the heap's
    last entry moves up from there.

    Raises:
        IndexError: the heap is empty.
    """
    last = heap.pop()
    size = len(heap)
    if not size:
        return last
    top = heap[0]
    pos = 0
    child = 1
    while child < size:
        smaller = heap[child]
        right = child + 1
        if right < size:
            other = heap[right]
            ct: float = smaller[0]
            rt: float = other[0]
            if not (ct < rt or (ct == rt and smaller < other)):
                smaller = other
                child = right
        heap[pos] = smaller
        pos = child
        child = 2 * pos + 1
    t: float = last[0]
    while pos > 0:
        up = (pos - 1) >> 1
        parent = heap[up]
        pt: float = parent[0]
        if t < pt or (t == pt and last < parent):
            heap[pos] = parent
            pos = up
        else:
            break
    heap[pos] = last
    return top


def schedule_buckets(heap: list[tuple[Any, ...]], *, end: float, bucket: float,
                     kind: int) -> None:
    """Push the bucket boundaries before ``end`` (``(time, sequence, kind)``, first at
    their instant)."""
    push = heapq.heappush
    k = 1
    while k * bucket < end:
        push(heap, (k * bucket, BUCKET_SEQ + k, kind))
        k += 1


def schedule_windows(
    heap: list[tuple[Any, ...]],
    control: Callable[[], int],
    *,
    end: float,
    windows: Sequence[Any],
    pauses: Sequence[Any],
    kinds: tuple[int, int, int],
    extra: tuple[Any, ...] = (),
) -> None:
    """Push one function's error windows opening and closing (``(time, sequence, kind,
    index, on, *extra)``), then its mapping's pauses and resumes (``(time, sequence,
    kind, *extra)``), with sequence numbers from ``control``; ``extra`` tells a driver
    with several mappings whose events they are."""
    errors_kind, pause_kind, resume_kind = kinds
    push = heapq.heappush
    for index, window in enumerate(windows):
        if window.start < end:
            push(heap, (window.start, control(), errors_kind, index, True, *extra))
        if window.stop is not None and window.stop < end:
            push(heap, (window.stop, control(), errors_kind, index, False, *extra))
    for pause in pauses:
        if pause.at < end:
            push(heap, (pause.at, control(), pause_kind, *extra))
        if pause.until is not None and pause.until < end:
            push(heap, (pause.until, control(), resume_kind, *extra))
