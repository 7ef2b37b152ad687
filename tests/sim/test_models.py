"""The modelled world: duration draws, execution environments, the downstream, arrivals."""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import random
import statistics

import pytest

from sluicegate.core.types import Receive
from sluicegate.sim import (
    DownstreamSpec,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    Normal,
    ProducerSpec,
    Uniform,
)
from sluicegate.sim.models import Arrivals, Downstream, Environments, LongPolls, sampler


def draws(dist: object, n: int = 20_000, seed: int = 1) -> list[float]:
    draw = sampler(dist, random.Random(seed))  # type: ignore[arg-type]
    return [draw() for _ in range(n)]


# ---------------------------------------------------------------------- durations


def test_fixed_draws_nothing_from_the_generator() -> None:
    rng = random.Random(5)
    state = rng.getstate()
    draw = sampler(Fixed(0.2), rng)
    assert {draw() for _ in range(10)} == {0.2}
    assert rng.getstate() == state


def test_uniform_stays_in_its_bounds() -> None:
    values = draws(Uniform(0.1, 0.3))
    assert min(values) >= 0.1 and max(values) <= 0.3
    assert statistics.fmean(values) == pytest.approx(0.2, rel=0.02)


def test_normal_is_clamped_at_zero() -> None:
    values = draws(Normal(0.01, 0.02))
    assert min(values) == 0.0
    assert statistics.fmean(draws(Normal(1.0, 0.1))) == pytest.approx(1.0, rel=0.01)


def test_lognormal_has_the_given_median_and_p99() -> None:
    values = sorted(draws(LogNormal(0.2, 0.4), n=50_000))
    assert values[len(values) // 2] == pytest.approx(0.2, rel=0.02)
    assert values[int(len(values) * 0.99)] == pytest.approx(0.4, rel=0.03)
    assert statistics.fmean(values) == pytest.approx(LogNormal(0.2, 0.4).mean, rel=0.02)
    assert set(draws(LogNormal(0.2, 0.2), n=10)) == {0.2}


def test_exponential_and_empirical() -> None:
    assert statistics.fmean(draws(Exponential(0.05))) == pytest.approx(0.05, rel=0.03)
    values = draws(Empirical((0.1, 0.2, 0.7)), n=30_000)
    assert set(values) == {0.1, 0.2, 0.7}
    assert values.count(0.7) / len(values) == pytest.approx(1 / 3, abs=0.02)
    assert set(draws(Empirical((0.3,)), n=5)) == {0.3}


def test_draws_are_reproducible() -> None:
    assert draws(LogNormal(0.05, 0.1), n=100, seed=3) == draws(LogNormal(0.05, 0.1), n=100, seed=3)
    assert draws(LogNormal(0.05, 0.1), n=100, seed=3) != draws(LogNormal(0.05, 0.1), n=100, seed=4)


# ---------------------------------------------------------------------- environments


def test_environments_are_reused_while_warm() -> None:
    envs = Environments(idle_timeout=600.0)
    assert envs.acquire(0.0) is True  # cold
    assert envs.acquire(0.0) is True  # the first is busy: a second one
    envs.release(1.0)
    assert envs.acquire(2.0) is False  # warm
    assert (envs.live, envs.cold_starts, envs.idle) == (2, 2, 0)


def test_the_most_recently_freed_environment_is_taken_and_idle_ones_age_out() -> None:
    envs = Environments(idle_timeout=600.0)
    for _ in range(3):
        envs.acquire(0.0)
    envs.release(10.0)  # A
    envs.release(20.0)  # B
    envs.release(30.0)  # C
    assert envs.acquire(40.0) is False  # takes C
    envs.release(50.0)
    # A idle since 10 s is reclaimed at 610 s; B (20 s) at 620 s
    envs.reclaim(615.0)
    assert (envs.live, envs.idle) == (2, 2)
    envs.reclaim(630.0)
    assert (envs.live, envs.idle) == (1, 1)
    envs.reclaim(650.0)  # C, freed again at 50 s, is reclaimed at 650 s
    assert envs.live == 0
    assert envs.acquire(651.0) is True
    assert envs.cold_starts == 4


def test_acquire_reclaims_before_reusing() -> None:
    envs = Environments(idle_timeout=5.0)
    envs.acquire(0.0)
    envs.release(1.0)
    assert envs.acquire(10.0) is True  # the idle one was too old: a cold start
    assert envs.live == 1


# ---------------------------------------------------------------------- downstream


def test_concurrency_capacity_latency_and_errors() -> None:
    spec = DownstreamSpec(concurrency=2, latency=Fixed(0.1), latency_exponent=1.0,
                          overload_errors=0.5)
    d = Downstream(spec, random.Random(1))
    assert d.call(0.0, 1) == (0.1, 0)  # load 1/2
    assert d.call(0.0, 1) == (0.1, 0)  # load 2/2: at capacity, no slowdown
    latency, before = d.call(0.0, 1)  # load 3/2
    assert latency == pytest.approx(0.15)
    assert d.active == 3
    for _ in range(3):
        d.done(0.0)
    assert d.active == 0
    # load 4/2 = 2: latency x2, errors with probability 0.5
    d.active = 3
    failures = 0
    for _ in range(4000):
        latency, failed = d.call(0.0, 1)
        d.done(0.0)
        assert latency == pytest.approx(0.2)
        failures += failed
    assert failures / 4000 == pytest.approx(0.5, abs=0.03)
    assert d.requests == 4003 and d.failures == failures + before


def test_latency_exponent() -> None:
    spec = DownstreamSpec(concurrency=1, latency=Fixed(0.1), latency_exponent=2.0,
                          overload_errors=0.0)
    d = Downstream(spec, random.Random(1))
    d.call(0.0, 1)
    assert d.call(0.0, 1) == (pytest.approx(0.4), 0)  # load 2, 2**2


def test_rate_capacity_uses_a_moving_average() -> None:
    spec = DownstreamSpec(rate=100.0, latency=Fixed(0.01), overload_errors=0.0)
    d = Downstream(spec, random.Random(1))
    # 50 requests/s for 10 s: load settles near 0.5, no slowdown
    for i in range(500):
        latency, _ = d.call(i * 0.02, 1)
    assert d.load(10.0, 0) == pytest.approx(0.5, rel=0.05)
    assert latency == 0.01
    # 400 requests/s: load near 4, latency x4
    for i in range(4000):
        latency, _ = d.call(10.0 + i * 0.0025, 1)
    assert latency == pytest.approx(0.04, rel=0.05)


def test_per_record_calls_add_up() -> None:
    spec = DownstreamSpec(concurrency=100, latency=Fixed(0.01), per="record")
    d = Downstream(spec, random.Random(1))
    assert d.call(0.0, 5) == (pytest.approx(0.05), 0)
    assert d.requests == 5


# ---------------------------------------------------------------------- arrivals


def sends(spec: ProducerSpec, end: float, seed: int = 1) -> list[tuple[float, int]]:
    a = Arrivals(spec, end, random.Random(seed))
    out = []
    when = a.first()
    while when is not None:
        out.append((when, a.count))
        when = a.next(when)
    return out


def test_constant_rate_without_drift() -> None:
    out = sends(ProducerSpec("constant", rate=1000.0, start=5.0, stop=65.0), end=1000.0)
    assert len(out) == 60_000
    assert out[0] == (5.0, 1)
    assert out[-1][0] == pytest.approx(64.999)
    assert out[10_000][0] == 15.0  # computed, not accumulated


def test_batched_sends() -> None:
    out = sends(ProducerSpec("constant", rate=1000.0, batch=10), end=10.0)
    assert len(out) == 1000 and {n for _, n in out} == {10}
    assert out[1][0] == pytest.approx(0.01)
    poisson = sends(ProducerSpec("poisson", rate=1000.0, batch=10), end=100.0)
    assert sum(n for _, n in poisson) == pytest.approx(100_000, rel=0.03)


def test_constant_stops_at_the_run_end() -> None:
    assert len(sends(ProducerSpec("constant", rate=10.0), end=2.0)) == 20


def test_poisson_rate() -> None:
    out = sends(ProducerSpec("poisson", rate=200.0), end=100.0)
    assert len(out) == pytest.approx(20_000, rel=0.03)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(out)]
    assert statistics.fmean(gaps) == pytest.approx(0.005, rel=0.03)
    assert statistics.stdev(gaps) == pytest.approx(0.005, rel=0.05)  # exponential


def test_bursts() -> None:
    out = sends(ProducerSpec("burst", size=500, interval=60.0, start=30.0, stop=200.0), 1000.0)
    assert out == [(30.0, 500), (90.0, 500), (150.0, 500)]
    one = sends(ProducerSpec("burst", size=7, start=10.0, stop=10.0), 1000.0)
    assert one == [(10.0, 7)]
    assert math.isclose(sum(n for _, n in out), 1500)


# ---------------------------------------------------------------------- long polls


def receive(poller: int) -> Receive:
    return Receive(poller, 10, 20.0, 30.0)


def test_long_polls_serve_a_random_waiter() -> None:
    polls = LongPolls(random.Random(1))
    for poller in range(4):
        polls.add(20.0 + poller, receive(poller))
    served = collections.Counter()
    for _ in range(4000):
        entry = polls.take()
        served[entry[2].poller] += 1
        polls.put_back(entry)
    assert len(polls) == 4
    assert set(served) == {0, 1, 2, 3}
    assert min(served.values()) > 900


def test_long_polls_expire_in_deadline_order() -> None:
    polls = LongPolls(random.Random(1))
    polls.add(20.0, receive(0))
    polls.add(21.0, receive(1))
    polls.add(5.0, receive(2))  # a batching window's shorter wait
    polls.add(22.0, receive(3))
    assert polls.next_deadline() == 5.0
    assert [r.poller for r in polls.expire(20.5)] == [2, 0]
    assert polls.next_deadline() == 21.0
    taken = polls.take()
    assert polls.next_deadline() == (22.0 if taken[2].poller == 1 else 21.0)
    assert [r.poller for r in polls.expire(30.0)] == sorted({1, 3} - {taken[2].poller})
    assert len(polls) == 0 and polls.next_deadline() is None


def test_long_polls_clear_returns_them_in_the_order_they_started() -> None:
    polls = LongPolls(random.Random(1))
    for poller in (3, 1, 2):
        polls.add(20.0, receive(poller))
    polls.take()
    assert len(polls.clear()) == 2
    assert polls.pool == [] and polls.next_deadline() is None


def test_lognormal_blocks_draw_what_gauss_draws() -> None:
    from sluicegate.sim.models import lognormal_block

    mu, sigma = math.log(0.05), 0.2
    rng, reference = random.Random("blocks"), random.Random("blocks")
    got = lognormal_block(mu, sigma, rng, 3) + lognormal_block(mu, sigma, rng, 5)
    assert got == [math.exp(mu + sigma * reference.gauss(0.0, 1.0)) for _ in range(16)]
    # a generator with a normal pending from gauss starts with it
    rng.gauss(0.0, 1.0)
    reference.gauss(0.0, 1.0)
    got = lognormal_block(mu, sigma, rng, 2)
    assert got == [math.exp(mu + sigma * reference.gauss(0.0, 1.0)) for _ in range(4)]


def test_event_heap_pops_in_heapq_order() -> None:
    from sluicegate.sim.models import pop_event, push_event

    # Given entries with tied times (then ordered by sequence, or past it as tuples are),
    # integer times among float ones, and pushes mixed with pops
    rng = random.Random("events")
    ours: list[tuple[object, ...]] = []
    reference: list[tuple[object, ...]] = []
    popped, expected = [], []
    for seq in range(3000):
        t: float = rng.choice([rng.random() * 10, float(rng.randrange(10)), rng.randrange(10)])
        entry = (t, rng.choice([seq, -seq, 7]), rng.randrange(3), seq)
        # When pushed through push_event and through heapq alike, or popped mid-way
        if rng.random() < 0.4 and ours:
            popped.append(pop_event(ours))
            expected.append(heapq.heappop(reference))
        push_event(ours, entry)
        heapq.heappush(reference, entry)
    while reference:
        popped.append(pop_event(ours))
        expected.append(heapq.heappop(reference))
    # Then the same entries come out in the same order, and the heap ends empty
    assert popped == expected and ours == []
    with pytest.raises(IndexError):
        pop_event(ours)


def test_event_heap_is_a_heap_for_heapq_too() -> None:
    from sluicegate.sim.models import pop_event, push_event

    rng = random.Random("mixed")
    heap: list[tuple[object, ...]] = []
    for seq in range(500):
        entry = (float(rng.randrange(50)), seq)
        (push_event if seq % 2 else heapq.heappush)(heap, entry)
    out = [(pop_event if i % 3 else heapq.heappop)(heap) for i in range(500)]
    assert out == sorted(out)
