"""Speed of sluicegate's simulator against SimPy and a bare heapq event loop.

All three simulate, in one process, the same queueing system for the same simulated time:

- a standard queue read with batch size 1 (one message per invocation);
- a producer sending 1,000 messages/s at a constant interval (one every 1 ms, from t=0;
  sluicegate's ``constant`` producer kind, which places message k at ``k / rate``);
- a function whose duration is lognormal with median 50 ms and p99 80 ms, seeded;
- concurrency capped at 100 in-flight invocations ("fixed" scaling, no cold start);
- 10 simulated minutes, so about 600,000 invocations (the queue stays short: 100 workers
  of ~51 ms mean serve ~1,950 messages/s against 1,000/s offered).

The three contestants:

- ``sluicegate``: ``sluicegate.sim.simulate`` on that workload written as a scenario
  (``SCENARIO`` below), in sluicegate's scenario format, as installed: the compiled build
  (setup.py, ``SLUICEGATE_COMPILE=1``, what ``make`` installs) or the pure-Python one; the
  report says which. With ``--pure`` the same runs on a copy of the package's Python
  sources, in a child process, are reported too (``sluicegate pure``);
- ``simpy lean``: the same system written with SimPy (a bench-only dependency, see
  ``bench/requirements.txt``) as lean as it goes: a producer process, a ``simpy.Store``
  as the queue and 100 long-lived consumer processes, each taking one message and
  holding it for a drawn duration;
- ``simpy textbook``: the same system in SimPy's textbook pattern (its bank and car-wash
  examples): the producer starts one process per message, which requests a
  ``simpy.Resource(capacity=100)`` (the concurrency cap), holds it for the drawn
  duration and releases it; a process and a request per message, which is what most
  SimPy models of a queue look like;
- ``bare``: the minimal work: one heap of ``(time, kind)`` events (arrivals and
  completions), a deque of waiting messages and a count of busy workers, no classes.

Each is timed on the wall clock (``time.perf_counter``; with ``--cpu``, on this process's
CPU time, ``time.process_time``, which other processes on a shared machine disturb less)
over several interleaved rounds,
and the median (or, with ``--best``, the best) invocations per wall second is reported,
with the ratios sluicegate/SimPy and sluicegate/bare. Targets: against the lean SimPy
model, the compiled build >= 3.0 and the pure-Python build (what ``pip install`` gives)
>= 1.0; against the textbook SimPy model >= 2.0; against the bare loop >= 0.15.
The simulated invocation counts are printed too, to show that all three did the same work.

Usage::

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/sim_speed.py [--rounds 3] [--best] [--cpu] [--minutes 10] [--pure]

If ``sluicegate.sim`` cannot be imported, its row says so and the two references still run.
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from typing import Any

SEED = 42
RATE = 1000.0            # messages per simulated second
MEDIAN = 0.050           # function duration median, seconds
P99 = 0.080              # function duration p99, seconds
CONCURRENCY = 100        # maximum in-flight invocations
MINUTES = 10.0           # simulated time

# Lognormal parameters for the median and p99 above: median = e^mu, p99 = e^(mu + z99*sigma).
# Both references draw a duration as exp(gauss(MU, SIGMA)), the cheapest lognormal draw in
# the standard library (lognormvariate is the same distribution through a slower normal).
MU = math.log(MEDIAN)
SIGMA = math.log(P99 / MEDIAN) / statistics.NormalDist().inv_cdf(0.99)

TARGET_VS_LEAN = {"compiled": 3.0, "pure Python": 1.0}
"""Target of sluicegate/simpy lean, per build."""
TARGET_VS_SIMPY = 2.0
"""Target of sluicegate/simpy textbook, either build."""
TARGET_VS_BARE = 0.15

SCENARIO = """\
seed = {seed}
duration = "{seconds}s"

[queue]
visibility_timeout = 30

[producer]
rate = {rate}
start = "0s"
stop = "{seconds}s"

[function]
duration = {{ distribution = "lognormal", median = "50ms", p99 = "80ms" }}
cold_start = "0ms"
timeout = 30

[mapping]
batch_size = 1
maximum_concurrency = {concurrency}
scaling = "fixed"
"""


def bare_loop(seconds: float, seed: int = SEED) -> int:
    """Invocations started within ``seconds`` by a minimal heapq event loop."""
    rng = random.Random(seed)
    gauss, exp = rng.gauss, math.exp
    mu, sigma = MU, SIGMA
    interval = 1.0 / RATE
    cap = CONCURRENCY
    push, pop = heapq.heappush, heapq.heappop
    heap: list[tuple[float, int]] = [(0.0, 0)]   # kind 0: arrival, 1: completion
    waiting: deque[float] = deque()
    busy = 0
    invocations = 0
    sent = 0
    while heap:
        now, kind = pop(heap)
        if now >= seconds:
            break
        if kind == 0:
            sent += 1
            push(heap, (sent * interval, 0))
            if busy < cap:
                busy += 1
                invocations += 1
                push(heap, (now + exp(gauss(mu, sigma)), 1))
            else:
                waiting.append(now)
        elif waiting:
            waiting.popleft()
            invocations += 1
            push(heap, (now + exp(gauss(mu, sigma)), 1))
        else:
            busy -= 1
    return invocations


def simpy_model(seconds: float, seed: int = SEED) -> int:
    """Invocations started within ``seconds`` by the same system written with SimPy."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    queue = simpy.Store(env)
    interval = 1.0 / RATE
    invocations = 0

    def producer() -> Any:
        sent = 0
        while True:
            queue.put(sent)              # unbounded store: the put succeeds at once
            sent += 1
            yield env.timeout(sent * interval - env.now)

    def consumer() -> Any:
        nonlocal invocations
        while True:
            yield queue.get()
            invocations += 1
            yield env.timeout(math.exp(rng.gauss(MU, SIGMA)))

    env.process(producer())
    for _ in range(CONCURRENCY):
        env.process(consumer())
    env.run(until=seconds)
    return invocations


def simpy_textbook_model(seconds: float, seed: int = SEED) -> int:
    """Invocations started within ``seconds`` by the textbook SimPy model: one process per
    message, a ``simpy.Resource`` of capacity 100 for the concurrency cap."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    workers = simpy.Resource(env, capacity=CONCURRENCY)
    interval = 1.0 / RATE
    invocations = 0

    def invocation() -> Any:
        nonlocal invocations
        with workers.request() as slot:
            yield slot
            invocations += 1
            yield env.timeout(math.exp(rng.gauss(MU, SIGMA)))

    def producer() -> Any:
        sent = 0
        while True:
            env.process(invocation())
            sent += 1
            yield env.timeout(sent * interval - env.now)

    env.process(producer())
    env.run(until=seconds)
    return invocations


def scenario_text(seconds: float, seed: int = SEED) -> str:
    """The workload in sluicegate's scenario format (TOML)."""
    return SCENARIO.format(seed=seed, seconds=f"{seconds:g}", rate=f"{RATE:g}",
                           concurrency=CONCURRENCY)


def sluicegate_runner() -> Callable[[float], int] | None:
    """A function running sluicegate's simulator, or None when it cannot be imported."""
    try:
        from sluicegate.sim import load_scenario, simulate
    except ImportError:
        return None

    def run(seconds: float) -> int:
        result = simulate(load_scenario(scenario_text(seconds)))
        return int(result.summary["total_invocations"])

    return run


def sluicegate_build() -> str:
    """Which build of sluicegate is installed: ``"compiled"`` or ``"pure Python"``."""
    from sluicegate.build import BUILD

    return BUILD


def pure_runner(directory: str, cpu: bool) -> Callable[[float], int]:
    """A function timing sluicegate's simulator on a copy of its Python sources (no
    extension modules) in a child process; it reports the child's own measurement."""
    import sluicegate

    shutil.copytree(os.path.dirname(sluicegate.__file__), os.path.join(directory, "sluicegate"),
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([directory, os.path.dirname(__file__)])}
    code = ("import json, sys, time, sim_speed; clock = time.process_time if sys.argv[2] == 'cpu' "
            "else time.perf_counter; run = sim_speed.sluicegate_runner(); "
            "assert sim_speed.sluicegate_build() == 'pure Python'; "
            "n, spent = sim_speed.timed(run, float(sys.argv[1]), clock); print(json.dumps([n, spent]))")
    last: list[float] = []

    def run(seconds: float) -> int:
        out = subprocess.run([sys.executable, "-c", code, str(seconds), "cpu" if cpu else "wall"],
                             env=env, check=True, capture_output=True, text=True).stdout
        n, spent = json.loads(out)
        last[:] = [spent]
        return int(n)

    run.spent = last  # type: ignore[attr-defined]
    return run


def timed(fn: Callable[[float], int], seconds: float,
          clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    start = clock()
    invocations = fn(seconds)
    spent = getattr(fn, "spent", None)  # measured in a child process
    return invocations, spent[0] if spent else clock() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--best", action="store_true", help="report the best round, not the median")
    parser.add_argument("--cpu", action="store_true",
                        help="time on process CPU time instead of the wall clock")
    parser.add_argument("--minutes", type=float, default=MINUTES,
                        help=f"simulated minutes (default {MINUTES:g})")
    parser.add_argument("--pure", action="store_true",
                        help="also time sluicegate's pure-Python sources (in a child process)")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("simpy") is None:
        sys.exit("sim_speed: simpy is not installed (pip install -r bench/requirements.txt)")
    seconds = args.minutes * 60.0

    contestants: dict[str, Callable[[float], int] | None] = {
        "sluicegate": sluicegate_runner(),
        "simpy lean": simpy_model,
        "simpy textbook": simpy_textbook_model,
        "bare heapq": bare_loop,
    }
    scratch = tempfile.TemporaryDirectory()
    if args.pure and contestants["sluicegate"] is not None:
        contestants["sluicegate pure"] = pure_runner(scratch.name, args.cpu)
    pick = "best" if args.best else "median"
    print(f"workload: batch size 1, {RATE:,.0f} msg/s constant-interval producer, "
          f"lognormal {MEDIAN * 1000:g} ms median / {P99 * 1000:g} ms p99, "
          f"concurrency {CONCURRENCY}, {args.minutes:g} simulated minutes")
    clock = time.process_time if args.cpu else time.perf_counter
    if contestants["sluicegate"] is not None:
        print(f"sluicegate build: {sluicegate_build()}")
    print(f"{pick} of {args.rounds} interleaved rounds, "
          f"{'CPU time' if args.cpu else 'wall clock'} per run")

    runs: dict[str, list[tuple[int, float]]] = {name: [] for name in contestants}
    for _ in range(args.rounds):
        for name, fn in contestants.items():
            if fn is not None:
                runs[name].append(timed(fn, seconds, clock))

    rates: dict[str, float] = {}
    print(f"{'':<15} {'invocations':>12} {'cpu s' if args.cpu else 'wall s':>8} "
          f"{'invocations/s':>14}")
    for name, fn in contestants.items():
        if fn is None:
            print(f"{name:<15} sluicegate.sim not available")
            continue
        per_second = sorted(((n / wall, n, wall) for n, wall in runs[name]), reverse=True)
        rate, n, wall = per_second[0] if args.best else per_second[len(per_second) // 2]
        rates[name] = rate
        counts = sorted({count for count, _ in runs[name]})
        note = "" if len(counts) == 1 else f"  (counts {counts[0]:,}..{counts[-1]:,})"
        print(f"{name:<15} {n:>12,} {wall:>8.2f} {rate:>14,.0f}{note}")
    scratch.cleanup()

    counts = [runs[name][0][0] for name in contestants if runs[name]]
    spread = (max(counts) - min(counts)) / max(counts)
    verdict = "OK" if spread <= 0.01 else "NOT the same work, ratios not comparable"
    print(f"same work: invocation counts within {spread:.3%} of each other ({verdict}; "
          f"{RATE * seconds:,.0f} messages sent)")

    ours = rates.get("sluicegate")
    build = sluicegate_build() if ours is not None else "pure Python"

    def comparisons(of: str) -> tuple[tuple[str, str, float], ...]:
        return (("sluicegate/simpy lean", "simpy lean", TARGET_VS_LEAN[of]),
                ("sluicegate/simpy textbook", "simpy textbook", TARGET_VS_SIMPY),
                ("sluicegate/bare", "bare heapq", TARGET_VS_BARE))

    if "sluicegate pure" in rates:
        pure = rates["sluicegate pure"]
        print(f"{'sluicegate/sluicegate pure:':<27} {ours / pure if ours else 0:6.3f}  (the build's gain)")
        for label, ref, target in comparisons("pure Python"):
            ratio = pure / rates[ref]
            if ref != "simpy lean":  # the pure build's one target is the lean model's
                print(f"{'pure' + label[10:] + ':':<27} {ratio:6.3f}")
                continue
            verdict = "PASS" if ratio >= target else "MISS"
            print(f"{'pure' + label[10:] + ':':<27} {ratio:6.3f}  (target >= {target:.2f})  {verdict}")
    for label, ref, target in comparisons(build):
        if ours is None:
            print(f"{label + ':':<27} n/a     (target >= {target:.2f})")
            continue
        ratio = ours / rates[ref]
        verdict = "PASS" if ratio >= target else "MISS"
        print(f"{label + ':':<27} {ratio:6.3f}  (target >= {target:.2f})  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
