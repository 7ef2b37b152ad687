"""Adaptive limits in several processes against one downstream, with explicit times.

N processes serving one mapping each run an :class:`AdaptiveLimit` of their own on their
own invocations. Here they are N limits fed by one shared downstream model (capacity C
calls at once at a base latency, slower in proportion above C, answering "busy" to a call
that found it above C, as ``tests/downstream.py``'s server does), each process starting
calls up to its own limit from an endless backlog. The cluster's coordinator tells each
limit how many processes share the mapping (:meth:`AdaptiveLimit.share_with`); these
tests compare the downstream's load with and without it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.core.adaptive import AdaptiveConfig, AdaptiveLimit
from sluicegate.core.signals import Sample, SampleKind

CAPACITY, LATENCY = 10, 0.25
"""The downstream of the cross-process test: 10 calls at once at 250 ms."""

AIMD = {"algorithm": "aimd", "initial": 3, "maximum": 60, "backoff_ratio": 0.75,
        "window": 0.5, "window_size": 5}
"""The cross-process test's settings (tests/cluster/test_control_processes.py)."""
VEGAS = {"algorithm": "vegas", "initial": 3, "maximum": 60, "alpha": 1, "beta": 2,
         "window": 0.5, "window_size": 5}
GRADIENT2 = {"algorithm": "gradient2", "initial": 3, "maximum": 60, "window": 0.5,
             "window_size": 5}

PHASES = (0.0, 0.05, 0.13, 0.21, 0.31)
"""Seconds between two processes' starts: real processes are never exactly in step."""


@dataclass
class Run:
    """What the downstream saw: seconds at each number of calls in progress (after
    ``since``), and the limits at the end."""

    time_at: dict[int, float] = field(default_factory=dict)
    peak: int = 0
    limits: list[AdaptiveLimit] = field(default_factory=list)

    def share_within(self, bound: float) -> float:
        """Share of the busy time with at most ``bound`` calls in progress."""
        busy = {k: v for k, v in self.time_at.items() if k > 0}
        return sum(v for k, v in busy.items() if k <= bound) / sum(busy.values())

    def mean(self) -> float:
        """Mean calls in progress."""
        return sum(k * v for k, v in self.time_at.items()) / sum(self.time_at.values())


def run(settings: dict[str, object], processes: int, *, shared: bool, phase: float = 0.0,
        until: float = 60.0, since: float = 5.0, kill_at: float | None = None,
        expire_after: float = 2.0) -> Run:
    """``processes`` limits on one downstream from 0 to ``until`` seconds, process k
    starting at ``k x phase``; ``shared``: each is told of the others
    (``share_with(processes, k)``). ``kill_at``: the last process stops then (its calls
    in flight end unobserved) and, with ``shared``, the survivors learn it
    ``expire_after`` seconds later (its lease expires)."""
    config = AdaptiveConfig.from_mapping(settings)
    limits = [AdaptiveLimit(config) for _ in range(processes)]
    if shared:
        for k, term in enumerate(limits):
            term.share_with(processes, k)
    flight = [0] * processes
    alive = [True] * processes
    out = Run(limits=limits)
    active, last = 0, 0.0
    events: list[tuple[float, int, int, float | None, int, float, bool]] = [
        (k * phase, -k - 1, k, None, 0, 0.0, False) for k in range(processes)]
    heapq.heapify(events)
    seq = 0
    told = False

    def move(now: float, step: int) -> None:
        nonlocal active, last
        if now > since:
            out.time_at[active] = out.time_at.get(active, 0.0) + now - max(last, since)
        last = now
        active += step
        out.peak = max(out.peak, active)

    while events and events[0][0] <= until:
        now, _, k, started, in_flight, latency, busy = heapq.heappop(events)
        if kill_at is not None and now >= kill_at:
            alive[-1] = False
            if shared and not told and now >= kill_at + expire_after:
                told = True
                for j, term in enumerate(limits[:-1]):
                    term.share_with(processes - 1, j)
        if started is not None:
            move(now, -1)
            flight[k] -= 1
            if alive[k]:
                limits[k].observe(now, Sample(started, now, SampleKind.OK, 1, in_flight,
                                              latency, busy))
        while alive[k] and flight[k] < limits[k].value(now):
            move(now, 1)
            flight[k] += 1
            seq += 1
            heapq.heappush(events, (now + LATENCY * max(1.0, active / CAPACITY), seq, k,
                                    now, flight[k], LATENCY * max(1.0, active / CAPACITY),
                                    active > CAPACITY))
    move(until, 0)
    return out


# ---------------------------------------------------------------------- the rules


def sample(end: float, in_flight: int, latency: float = 0.1, *,
           overload: bool = False) -> Sample:
    return Sample(end - latency, end, SampleKind.OK, 1, in_flight, latency, overload)


def unwindowed(**settings: object) -> AdaptiveLimit:
    settings.setdefault("window", 0.0)
    settings.setdefault("decay_time", 0.0)
    return AdaptiveLimit(AdaptiveConfig.from_mapping(settings))


def test_aimd_grows_by_one_over_n_and_keeps_the_fraction() -> None:
    term = unwindowed(algorithm="aimd", initial=5)
    term.share_with(2)
    assert (term.processes, term.rank) == (2, 0)
    term.observe(1.0, sample(1.0, in_flight=5))
    assert term.algorithm.estimate == 5.5 and term.value(1.0) == 5
    term.observe(2.0, sample(2.0, in_flight=5))
    assert term.algorithm.estimate == 6.0 and term.value(2.0) == 6
    # decreases stay the process's own, multiplicative: int(6 x 0.9)
    term.observe(3.0, sample(3.0, in_flight=6, overload=True))
    assert term.value(3.0) == 5
    assert term.statistics().processes == 2


def test_gradient2_shares_its_queue_size() -> None:
    alone, shared = (unwindowed(algorithm="gradient2", initial=20) for _ in range(2))
    shared.share_with(4)
    for term in (alone, shared):
        term.observe(1.0, sample(1.0, in_flight=20, latency=0.1))  # gradient 1
    # limit x (1 - 0.2) + (limit x 1 + queue_size / N) x 0.2
    assert alone.algorithm.estimate == pytest.approx(20 + 4 * 0.2)
    assert shared.algorithm.estimate == pytest.approx(20 + 4 / 4 * 0.2)


def test_vegas_shares_its_increases_not_its_decreases() -> None:
    def vegas(processes: int, latency: float) -> float:
        term = unwindowed(algorithm="vegas", initial=20, probe_multiplier=1000)
        term.share_with(processes)
        term.observe(1.0, sample(1.0, in_flight=20, latency=0.1))  # no-load latency
        term.observe(2.0, sample(2.0, in_flight=20, latency=latency))
        return term.algorithm.estimate

    # queue 0 <= log10(20) = 1: + beta (6), shared by 3
    assert vegas(1, 0.1) == pytest.approx(26) and vegas(3, 0.1) == pytest.approx(22)
    # queue ceil(20 x (1 - 0.1 / 0.11)) = 2 < alpha (3): + log10(20) = 1, shared by 2
    assert vegas(1, 0.11) == pytest.approx(21) and vegas(2, 0.11) == pytest.approx(20.5)
    # queue 10 > beta (6): - 1, whatever the processes
    assert vegas(1, 0.2) == vegas(4, 0.2) == pytest.approx(19)


@given(processes=st.integers(1, 8), estimate=st.floats(1.0, 500.0))
def test_n_equal_estimates_give_one_limit_of_n_times_the_estimate(
    processes: int, estimate: float
) -> None:
    # the ranks' offsets spread the integer steps: N processes in step add one slot at a
    # time, not N every N-th update
    total = 0
    for k in range(processes):
        term = unwindowed(algorithm="aimd", maximum=1000)
        term.algorithm.estimate = estimate
        term.share_with(processes, k)
        total += term.value(0.0)
    assert total == math.floor(processes * estimate + 1e-9) or total == math.floor(
        processes * estimate)


def test_a_rank_outside_the_processes_and_a_count_below_one_are_brought_in() -> None:
    term = unwindowed(algorithm="aimd", initial=4)
    term.share_with(0, 5)
    assert (term.processes, term.rank, term.value(0.0)) == (1, 0, 4)
    term.share_with(2, 9)
    assert (term.processes, term.rank, term.value(0.0)) == (2, 1, 4)  # int(4 + 1/2)


# ---------------------------------------------------------------------- the downstream


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_aimd_processes_sharing_growth_hold_the_downstream_as_one(processes: int) -> None:
    alone = run(AIMD, 1, shared=True)
    assert alone.share_within(1.1 * CAPACITY) == 1.0
    shared = [run(AIMD, processes, shared=True, phase=p) for p in PHASES]
    own = [run(AIMD, processes, shared=False, phase=p) for p in PHASES]
    # with growth shared, the downstream stays within 1.1 C nearly all its busy time,
    # whatever the processes' phases (measured: 0.97 to 1.0); on their own they grow in
    # step and overshoot (measured: 0.80 to 1.0, mean 0.85 to 0.96)
    within = [r.share_within(1.1 * CAPACITY) for r in shared]
    within_own = [r.share_within(1.1 * CAPACITY) for r in own]
    assert min(within) >= 0.97
    assert sum(within_own) / len(own) < sum(within) / len(shared)
    # and they use it as one process does (measured: 0.96 to 1.0 of its mean calls)
    assert min(r.mean() for r in shared) >= 0.93 * alone.mean()


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_gradient2_processes_sharing_their_headroom_run_as_one(processes: int) -> None:
    # Gradient2 reads no drops: its headroom (queue_size) sets how far above capacity it
    # settles. N processes each with the whole of it run N times the headroom (measured,
    # mean calls over one process's: 1.5, 2.0, 2.6 for 2, 3, 4 processes); sharing it,
    # they run about as one (1.02, 1.08, 1.3: the smoothing's lag adds up)
    alone = run(GRADIENT2, 1, shared=True).mean()
    shared = run(GRADIENT2, processes, shared=True, phase=0.13).mean()
    own = run(GRADIENT2, processes, shared=False, phase=0.13).mean()
    assert shared <= 1.35 * alone
    assert own >= 1.4 * alone


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_vegas_processes_sharing_growth_overshoot_less(processes: int) -> None:
    shared = [run(VEGAS, processes, shared=True, phase=p) for p in PHASES]
    own = [run(VEGAS, processes, shared=False, phase=p) for p in PHASES]
    assert max(r.peak for r in shared) < max(r.peak for r in own)
    assert (sum(r.share_within(1.1 * CAPACITY) for r in shared)
            > sum(r.share_within(1.1 * CAPACITY) for r in own))


def test_a_survivor_grows_at_full_speed_once_the_dead_process_is_gone() -> None:
    # Given two processes sharing growth, one killed at 20 s, its lease expiring 2 s later
    both = run(AIMD, 2, shared=True, phase=0.13, until=40.0, since=25.0, kill_at=20.0)
    survivor = both.limits[0]
    # the survivor learnt it is alone and took the whole downstream back
    assert (survivor.processes, survivor.rank) == (1, 0)
    assert both.mean() >= 0.7 * CAPACITY
    assert both.share_within(1.1 * CAPACITY) >= 0.99
